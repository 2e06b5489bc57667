/**
 * The long soak and the 1 GiB integrity run, outside the default test suite.
 *
 *   npx tsx scripts/soak.ts [--cycles N] [--concurrent M] [--concurrency C]
 *                           [--integrity-mib X] [--slow-rate-mib R] [--phase-timeout-min T]
 *
 * Defaults: 100,000 connect/relay/close cycles (64 at a time), 10,000 concurrent sessions,
 * then 1024 MiB each way through the proxy with a slow reader on each side in turn. Every
 * phase is bounded by --phase-timeout-min (default 15). Prints the numbers as it goes and a
 * JSON summary at the end; exits 1 when an invariant fails (a failed cycle, fds not back to
 * their baseline, memory still growing, a hash mismatch, the proxy gone).
 *
 * The proxy needs two file descriptors per session: 10,000 concurrent sessions need 20,000
 * plus its own handful. Where RLIMIT_NOFILE is lower (this machine: 20,000 hard, and no
 * CAP_SYS_RESOURCE to raise it) the sessions past the limit are refused and the run reports
 * how many, and checks the proxy survives running out of descriptors and recovers.
 */
import { parseArgs } from 'node:util';
import { runSoak } from '../test/soak/soak-runner.js';
import { runIntegrity } from '../test/soak/integrity.js';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '100000' },
    concurrent: { type: 'string', default: '10000' },
    concurrency: { type: 'string', default: '64' },
    'integrity-mib': { type: 'string', default: '1024' },
    'slow-rate-mib': { type: 'string', default: '64' },
    'phase-timeout-min': { type: 'string', default: '15' },
  },
});
const num = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${values[name]}`);
  return n;
};

const MIB = 1024 * 1024;
const mib = (kib: number): string => (kib / 1024).toFixed(1);
const problems: string[] = [];
const started = Date.now();
const log = (line: string): void => console.log(`[${((Date.now() - started) / 1000).toFixed(0).padStart(5)} s] ${line}`);

const soak = await runSoak({
  cycles: num('cycles'),
  cycleConcurrency: num('concurrency'),
  concurrent: num('concurrent'),
  phaseTimeoutMs: num('phase-timeout-min') * 60_000,
  progress: log,
});
const c = soak.cycles;
const k = soak.concurrent;
if (c.done < c.requested) problems.push(`only ${c.done} of ${c.requested} cycles done (${c.failed} failed; first: ${c.firstErrors.join('; ')})`);
if (c.after.fds !== soak.baseline.fds) problems.push(`fds after the cycles: ${c.after.fds}, baseline ${soak.baseline.fds}`);
if (c.midway && c.after.rssKiB - c.midway.rssKiB > 32 * 1024) problems.push(`RSS grew ${mib(c.after.rssKiB - c.midway.rssKiB)} MiB over the second half of the cycles`);
const possible = Math.floor((k.fdLimit - soak.baseline.fds) / 2);
if (k.opened < Math.min(k.requested, possible - 10)) problems.push(`only ${k.opened} of ${k.requested} concurrent sessions opened (the fd limit allows about ${possible})`);
if (k.relayedAfterOpen !== k.opened) problems.push(`${k.opened - k.relayedAfterOpen} open sessions did not relay`);
if (k.after.fds !== soak.baseline.fds) problems.push(`fds after closing the concurrent sessions: ${k.after.fds}, baseline ${soak.baseline.fds}`);
if (!soak.alive) problems.push('the proxy exited');
log(`soak: ${c.done} cycles in ${c.seconds.toFixed(0)} s (${c.perSecond.toFixed(0)}/s, ${c.failed} failed); ` +
  `fds ${soak.baseline.fds} → ${c.after.fds}; RSS ${mib(soak.baseline.rssKiB)} → ${c.midway ? mib(c.midway.rssKiB) : '?'} (midway) → ${mib(c.after.rssKiB)} MiB`);
log(`soak: ${k.opened} concurrent of ${k.requested} (fd limit ${k.fdLimit} allows ~${possible}; refused ${k.refused} ${JSON.stringify(k.refusals)}); ` +
  `peak ${k.peak.fds} fds, RSS ${mib(k.peak.rssKiB)} MiB (~${(k.bytesPerSession / 1024).toFixed(0)} KiB per session); after: ${k.after.fds} fds, RSS ${mib(k.after.rssKiB)} MiB`);

const integrity = [];
const bytes = num('integrity-mib') * MIB;
if (bytes > 0) {
  for (const slow of ['client', 'target'] as const) {
    log(`integrity: ${num('integrity-mib')} MiB each way, slow ${slow} reader at ${num('slow-rate-mib')} MiB/s...`);
    const r = await runIntegrity({ bytes, slow, slowRate: num('slow-rate-mib') * MIB, timeoutMs: num('phase-timeout-min') * 60_000 });
    integrity.push(r);
    const ok = r.clientToTarget.sent === r.clientToTarget.received && r.targetToClient.sent === r.targetToClient.received;
    if (!ok) problems.push(`integrity (slow ${slow}): SHA-256 mismatch`);
    if (r.rssGrowthKiB > 48 * 1024) problems.push(`integrity (slow ${slow}): proxy RSS grew ${mib(r.rssGrowthKiB)} MiB (bound 48 MiB)`);
    log(`integrity (slow ${slow}): ${ok ? 'SHA-256 equal both ways' : 'MISMATCH'} in ${r.seconds.toFixed(1)} s; ` +
      `proxy RSS ${mib(r.rssBaselineKiB)} → max ${mib(r.rssMaxKiB)} MiB (+${mib(r.rssGrowthKiB)}); writer at most ${(r.maxLeadBytes / MIB).toFixed(1)} MiB ahead`);
  }
}

console.log(JSON.stringify({ soak, integrity, problems }, null, 2));
if (problems.length > 0) {
  for (const p of problems) console.error(`FAIL: ${p}`);
  process.exitCode = 1;
} else {
  log('all invariants held');
}
