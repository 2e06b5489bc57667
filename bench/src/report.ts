/** docs/benchmarks.md from one run's results. */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Results } from './run.js';
import { SUBJECT_LABEL, metricDefs, type SubjectName } from './metrics.js';
import { checkTargets } from './targets.js';
import { fmt, fmtRatio, median, medianDiff, medianRatio } from './stats.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface ReportContext {
  /** The command line that produced this run, as typed. */
  command: string;
  /** File name of the chart, relative to the markdown file. */
  svgName: string;
  quick: boolean;
}

function series(r: Results, m: string, s: SubjectName): Array<number | undefined> {
  return r.values[m]?.[s] ?? [];
}

/** KiB as MiB; not measured (NaN, or null once saved with --json) is a dash. */
const mib = (kib: number | null): string => (typeof kib === 'number' && Number.isFinite(kib) ? fmt(kib / 1024) : '—');

/** Median over rounds of the rounds that measured something. */
function mid(r: Results, m: string, s: SubjectName): number {
  return median(series(r, m, s).filter((x): x is number => x !== undefined));
}

/** A difference as "+ 12.3" or "− 4.5", for "ws→ws + 12.3 µs". */
const signed = (d: number): string => `${d >= 0 ? '+' : '−'} ${fmt(Math.abs(d))}`;

/**
 * Whether a "≥ target × ws→ws" target is within what the ws relay reaches: if the least a
 * WebSocket relay in Node does falls short, no relay written in Node reaches it here.
 */
function reach(ratio: number, target: number): string {
  return ratio >= target ? `within reach of a relay in Node here`
    : `out of reach here: even the ws relay falls ${Math.round((1 - ratio / target) * 100)} % short of it`;
}

/** One bullet per figure from the sentences of the references that ran (none: no bullet). */
function bullet(out: string[], title: string, parts: Array<string | undefined>): void {
  const said = parts.filter((p): p is string => p !== undefined);
  if (said.length > 0) out.push(`**${title}.** ${said.join(' ')}`);
}

/** Sentences about the floors the TCP relay and the ws relay show, for those that ran. */
function ceilings(r: Results): string[] {
  const out: string[] = [];
  const wsRelay = 'The ws relay, the least any WebSocket relay in Node does,';

  const hop = medianDiff(series(r, 'rtt.p50', 'tcp-relay'), series(r, 'rtt.p50', 'tcp'));
  const wsHop = medianDiff(series(r, 'rtt.p50', 'ws-relay'), series(r, 'rtt.p50', 'ws'));
  bullet(out, 'Round trip', [
    Number.isFinite(hop) ? `The TCP relay adds ${fmt(hop)} µs to the raw TCP p50 (two more loopback hops and two more process wake-ups).`
      + ` A WebSocket relay pays that on top of what ws→ws pays, so its p50 cannot be below about ${fmt(mid(r, 'rtt.p50', 'ws') + hop)} µs here;`
      + ` the issue's "ws→ws + 20 µs" needs a relay hop of at most 20 µs.`
      + ` tsockify is ${fmt(medianDiff(series(r, 'rtt.p50', 'tsockify'), series(r, 'rtt.p50', 'tcp-relay')))} µs above the TCP relay.` : undefined,
    Number.isFinite(wsHop) ? `${wsRelay} has a p50 of ws→ws ${signed(wsHop)} µs, so the "≤ ws→ws + 20 µs" target is`
      + ` ${wsHop <= 20 ? 'within reach of a relay in Node here' : `out of reach here by ${fmt(wsHop - 20)} µs`};`
      + ` tsockify is at the ws relay ${signed(medianDiff(series(r, 'rtt.p50', 'tsockify'), series(r, 'rtt.p50', 'ws-relay')))} µs.` : undefined,
  ]);

  const p99 = medianRatio(series(r, 'rtt.p99', 'tcp-relay'), series(r, 'rtt.p99', 'websockify'));
  const wsP99 = medianRatio(series(r, 'rtt.p99', 'ws-relay'), series(r, 'rtt.p99', 'ws'));
  const wsP99Wsfy = medianRatio(series(r, 'rtt.p99', 'ws-relay'), series(r, 'rtt.p99', 'websockify'));
  bullet(out, 'Round trip, p99', [
    Number.isFinite(p99) ? `The TCP relay's p99 is ${fmtRatio(p99)} websockify's; tsockify's is ${fmtRatio(medianRatio(series(r, 'rtt.p99', 'tsockify'), series(r, 'rtt.p99', 'tcp-relay')))} the TCP relay's.` : undefined,
    Number.isFinite(wsP99) ? `The ws relay's p99 is ${fmtRatio(wsP99)} ws→ws's`
      + `${Number.isFinite(wsP99Wsfy) ? ` and ${fmtRatio(wsP99Wsfy)} websockify's, so the "≤ 0.7 × websockify" target is`
        + ` ${wsP99Wsfy <= 0.7 ? 'within reach of a relay in Node here' : `out of reach here: even the ws relay's p99 is ${fmtRatio(wsP99Wsfy / 0.7)} that`}` : ''};`
      + ` tsockify's is ${fmtRatio(medianRatio(series(r, 'rtt.p99', 'tsockify'), series(r, 'rtt.p99', 'ws-relay')))} the ws relay's.` : undefined,
    Number.isFinite(p99) || Number.isFinite(wsP99) ? 'The tail is wake-up and scheduling jitter of three processes on two cores (GC settings do not move it: see the profiling notes).' : undefined,
  ]);

  for (const [m, name] of [['down', 'Downstream'], ['up', 'Upstream']] as const) {
    const relay = medianRatio(series(r, m, 'tcp-relay'), series(r, m, 'tcp'));
    const ws = medianRatio(series(r, m, 'ws-relay'), series(r, m, 'ws'));
    // A relay that only reads and writes, against websockify: how far "n × websockify" can go.
    const vsWsfy = medianRatio(series(r, m, 'tcp-relay'), series(r, m, 'websockify'));
    bullet(out, name, [
      Number.isFinite(relay) ? `The TCP relay moves ${fmtRatio(relay)} of raw TCP at ${fmt(mid(r, `${m}.cpu`, 'tcp-relay'))} CPU s/GiB`
        + `${Number.isFinite(vsWsfy) ? ` and ${fmtRatio(vsWsfy)} of websockify` : ''};`
        + ` tsockify moves ${fmtRatio(medianRatio(series(r, m, 'tsockify'), series(r, m, 'tcp-relay')))} of the TCP relay.` : undefined,
      Number.isFinite(ws) ? `${wsRelay} moves ${fmtRatio(ws)} of ws→ws at ${fmt(mid(r, `${m}.cpu`, 'ws-relay'))} CPU s/GiB, so the "≥ 0.8 × ws→ws" target is ${reach(ws, 0.8)};`
        + ` tsockify moves ${fmtRatio(medianRatio(series(r, m, 'tsockify'), series(r, m, 'ws-relay')))} of the ws relay.` : undefined,
    ]);
  }

  for (const [m, name] of [['seq.rate', 'sequential'], ['par.rate', 'parallel']] as const) {
    const relay = mid(r, m, 'tcp-relay');
    const ws = medianRatio(series(r, m, 'ws-relay'), series(r, m, 'ws'));
    bullet(out, `Sessions/s, ${name}`, [
      Number.isFinite(relay) ? `The TCP relay (TCP connect, first byte, close: no HTTP, no WebSocket handshake) sets up ${fmt(relay)} sessions/s.` : undefined,
      Number.isFinite(ws) ? `${wsRelay} sets up ${fmt(mid(r, m, 'ws-relay'))} sessions/s, ${fmtRatio(ws)} ws→ws, so the "≥ 0.7 × ws→ws" target is ${reach(ws, 0.7)};`
        + ` tsockify sets up ${fmtRatio(medianRatio(series(r, m, 'tsockify'), series(r, m, 'ws-relay')))} the ws relay's.` : undefined,
    ]);
  }

  // The ws relay holds a WebSocket and a TCP socket per session and nothing else: the floor.
  const tiers = r.idleCounts.filter((n) => Number.isFinite(mid(r, `idle.${n}.kib`, 'ws-relay')));
  bullet(out, 'Memory per idle session', [
    tiers.length > 0 ? `The ws relay, holding a \`ws\` WebSocket and a TCP socket per session and nothing else, needs `
      + tiers.map((n) => `${fmt(mid(r, `idle.${n}.kib`, 'ws-relay'))} KiB at ${n.toLocaleString('en-US')}`
        + ` (tsockify ${fmtRatio(medianRatio(series(r, `idle.${n}.kib`, 'tsockify'), series(r, `idle.${n}.kib`, 'ws-relay')))} that)`).join(' and ')
      + '; the target asks ≤ 12 KiB at 10,000.' : undefined,
  ]);
  return out;
}

function cell(vals: Array<number | undefined> | undefined): string {
  if (!vals) return '—';
  return fmt(median(vals.filter((x): x is number => x !== undefined)));
}

export function renderMarkdown(r: Results, ctx: ReportContext): string {
  const L: string[] = [];
  const subjects = r.subjects;
  const has = (s: SubjectName): boolean => subjects.includes(s);
  L.push('# Benchmarks');
  L.push('');
  L.push(`<!-- Written by \`pnpm bench\` (bench/src/report.ts); edit the generator, not this file. -->`);
  L.push('');
  const references = has('tcp-relay') || has('ws-relay') ? ' (and minimal relays in Node as references)' : '';
  L.push(`tsockify against Python websockify and two baselines${references} on one machine, in one run, interleaved round by round`
    + ` (${subjects.map((s) => SUBJECT_LABEL[s]).join(', ')}, then again). ${r.rounds} round${r.rounds === 1 ? '' : 's'};`
    + ` every figure is the median over rounds, and every ratio is taken within each round and then the median of those.`
    + (ctx.quick ? ' **Quick mode: tiny bounds, for a smoke check only; these figures say little.**' : ''));
  L.push('');
  L.push('↑ higher is better, ↓ lower is better; "a ÷ b" columns divide the figures of one round and take the median over rounds.');
  L.push('');
  L.push(`![tsockify and websockify relative to the baselines](${ctx.svgName})`);
  L.push('');

  L.push('## Targets (issue 4)');
  L.push('');
  L.push('| figure | target | measured (median of per-round ratios) | holds |');
  L.push('|---|---|---|---|');
  for (const t of checkTargets(r)) {
    L.push(`| ${t.figure} | ${t.target} | ${t.measured} | ${t.holds === undefined ? 'not measured' : t.holds ? '**yes**' : '**no**'} |`);
  }
  L.push('');

  L.push('## Results');
  L.push('');
  const ratioCols: Array<[SubjectName, SubjectName]> = [];
  if (has('tsockify')) for (const b of ['websockify', 'tcp', 'ws', 'tcp-relay', 'ws-relay'] as const) if (has(b)) ratioCols.push(['tsockify', b]);
  if (has('websockify') && has('ws')) ratioCols.push(['websockify', 'ws']);
  L.push(`| figure | unit | ${subjects.map((s) => SUBJECT_LABEL[s]).join(' | ')} | ${ratioCols.map(([a, b]) => `${SUBJECT_LABEL[a]} ÷ ${SUBJECT_LABEL[b]}`).join(' | ')} |`);
  L.push(`|---|---|${subjects.map(() => '---:').join('|')}|${ratioCols.map(() => '---:').join('|')}|`);
  for (const def of metricDefs(r.idleCounts)) {
    if (!r.scenarios.includes(def.scenario)) continue;
    const v = r.values[def.id] ?? {};
    const cells = subjects.map((s) => {
      const c = cell(v[s]);
      return def.endpointForBaselines && (s === 'tcp' || s === 'ws') && c !== '—' ? `${c}\\*` : c;
    });
    const ratios = ratioCols.map(([a, b]) => {
      if (def.proxiesOnly && (b === 'tcp' || b === 'ws')) return '—';
      return fmtRatio(medianRatio(v[a] ?? [], v[b] ?? []));
    });
    L.push(`| ${def.label} | ${def.unit} ${def.better === 'higher' ? '↑' : '↓'} | ${cells.join(' | ')} | ${ratios.join(' | ')} |`);
  }
  L.push('');
  L.push('\\* For the baselines there is no proxy: the memory figure is the endpoint\'s (the target process holding'
    + ' the TCP sockets, or the `ws` server holding the WebSockets), the floor for anything that holds that leg.'
    + ' A relay holds both legs. CPU per GiB is the relay processes\' user+system time over the bytes relayed in the'
    + ' phase (from /proc/PID/stat, reaped children included), so the baselines have none. A dash is a figure that does not apply or was not measured.');
  L.push('');

  if (r.idle.length > 0) {
    L.push('### Idle sessions, per round');
    L.push('');
    L.push('| subject | round | asked | held | still echoing | failed | time to open (s) | PSS before (MiB) | PSS held (MiB) | processes | fds | note |');
    L.push('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|');
    for (const d of r.idle) {
      const note = d.skipped ?? d.firstError ?? '';
      L.push(`| ${SUBJECT_LABEL[d.subject]} | ${d.round + 1} | ${d.asked.toLocaleString('en-US')} | ${d.skipped ? '—' : d.held.toLocaleString('en-US')} | ${d.skipped ? '—' : d.echoing.toLocaleString('en-US')} | ${d.skipped ? '—' : d.failed}`
        + ` | ${d.skipped ? '—' : d.seconds.toFixed(1)} | ${mib(d.pssBeforeKiB)} | ${mib(d.pssHeldKiB)} | ${d.skipped ? '—' : d.processes} | ${Number.isFinite(d.fds) ? d.fds : '—'} | ${note.replace(/\|/g, '\\|')} |`);
    }
    L.push('');
    if (r.fdCeiling) {
      const c = r.fdCeiling;
      L.push(`**Ceiling on held sessions here.** A tsockify session holds two descriptors (the client socket and the target`
        + ` socket). An idle tsockify process already has ${c.baseFds} open, and this machine's hard open-files limit is`
        + ` ${Number.isFinite(c.hardLimit) ? c.hardLimit.toLocaleString('en-US') : 'unlimited'}`
        + ` (\`ulimit -Hn\`; raising it needs CAP_SYS_RESOURCE, which this sandbox does not grant), so one process can hold at most`
        + ` **${c.maxSessions.toLocaleString('en-US')}** sessions. The benchmark raises the soft limit to the hard one for every proxy it starts.`);
      L.push('');
    }
  }

  L.push('## Machine');
  L.push('');
  const m = r.machine;
  L.push(`- CPU: ${m.cpu}, ${m.cores} cores`);
  L.push(`- memory: ${m.memoryGiB} GiB`);
  L.push(`- kernel: ${m.kernel}`);
  L.push(`- Node.js: ${m.node}`);
  L.push(`- ${m.websockify}`);
  L.push(`- open files limit: ${m.openFilesLimit}`);
  L.push(`- load average (1, 5, 15 min) at the start: ${m.loadAverage}${r.loadAtEnd ? `, at the end: ${r.loadAtEnd}` : ''} (the machine is shared with other jobs; rounds are interleaved so that their noise hits every subject alike)`);
  L.push(`- run: ${r.startedAt}, ${Math.round(r.seconds)} s`);
  L.push('');

  L.push('## How to rerun');
  L.push('');
  L.push('```sh');
  L.push('pnpm install && pnpm build          # once');
  L.push(ctx.command);
  L.push('```');
  L.push('');
  L.push('`pnpm bench -- --help` lists the flags (`--rounds`, `--duration`, `--scenarios`, `--subjects`, `--idle`, `--parallel`, `--quick`, `--out`, `--json`, and `--render FILE` to rewrite this page from saved results).'
    + ' `pnpm --filter @tsockify/bench run micro` runs the benchmark.js microbenchmarks of the hot functions (relay message path, ws frame parsing, record encoding, signed-token verification);'
    + ' `pnpm --filter @tsockify/bench run profile -- cpu|heap` the profiles behind the notes below.');
  L.push('');

  L.push('## What each subject is');
  L.push('');
  L.push('- **tsockify**: the CLI as its own process, `node packages/cli/bin/tsockify.js 127.0.0.1:PORT 127.0.0.1:TARGET` (default options, logging at its default level to a file).');
  L.push('- **tsockify, 2 workers**: the same CLI with `--workers 2` (two worker processes sharing the port, sessions spread between them), in the scenarios with many sessions at once (parallel setup, idle sessions). A session needs two descriptors, so one process stops short of 10,000 sessions where the open-files limit is 20,000; two processes do not.');
  L.push('- **websockify**: `/usr/bin/websockify 127.0.0.1:PORT 127.0.0.1:TARGET` (Debian\'s Python websockify; it forks a process per session).');
  L.push('- **raw TCP**: the client connects straight to the target: the machine\'s limit for moving these bytes.');
  L.push('- **ws→ws**: a `ws` client talking to a `ws` server (inside the target process) that speaks the same protocol: the limit for any one-hop WebSocket relay using this client.');
  L.push('- **TCP relay** (a reference, not a contender): a dozen lines of Node piping a TCP client to the target (bench/src/tcp-relay.ts), so what one relay hop costs on this machine before any WebSocket work. Like the ws relay and the helpers, it runs with the raised glibc trim threshold. It skips the idle scenario.');
  L.push('- **ws relay** (a reference, not a contender): the least a WebSocket-to-TCP relay in Node does (bench/src/ws-relay.ts, about 40 lines): a `ws` server'
    + ' (noServer, attached to `http.createServer`, perMessageDeflate off, `binary` subprotocol answered when offered) that on each upgrade dials the target with'
    + ' `net.connect` (noDelay), answers the upgrade once connected, forwards target data with `ws.send(chunk)` and client messages with `target.write(data)`'
    + ' with simple backpressure (the target paused while more than 1 MiB is queued on the WebSocket, the WebSocket paused until the target drains),'
    + ' and closes each side when the other ends. No auth, no limits, no logging; it runs with the raised glibc trim threshold that the tsockify CLI primes for itself.'
    + ' It shows the ceiling for any WebSocket relay written in Node on this machine, and runs every scenario: its idle figure is the memory floor for a relay holding two sockets per session.');
  L.push('');
  L.push('The target is a separate Node process. Like a VNC server it speaks first (a 12-byte greeting), then the client\'s first byte picks echo, push (64 KiB writes as fast as the connection takes them) or sink (one acknowledgement byte per MiB).'
    + ' The client is a separate Node process using `ws` with the `binary` subprotocol (and a zero masking key, so the client does not copy what it sends; the server unmasks either way).'
    + ' Every proxy is started fresh for each cell; every phase is bounded in time and count; all traffic is on 127.0.0.1.');
  L.push('');
  L.push(`- **downstream / upstream**: one session, ${r.durationMs / 1000} s measured after a warm-up; upstream counts bytes the sink acknowledged (delivered, not queued), with at most 8 MiB unacknowledged.`);
  L.push(`- **round trip**: 64 bytes out, all 64 back, one at a time, for ${r.durationMs / 1000} s after 200 unmeasured ones.`);
  L.push(`- **session setup**: open (TCP connect and WebSocket upgrade), wait for the target's first byte, close with a close handshake and wait for the socket to close; one at a time, then ${r.parallel} at once; sessions started and finished in the measured window count (a subject that finishes fewer than 5 in the window gets up to one session timeout more, and its window is stretched to match). "Upgrade request → first target byte" is from the start of the connect to the first byte of the greeting.`);
  L.push(`- **idle sessions**: open ${r.idleCounts.map((n) => n.toLocaleString('en-US')).join(' and ')} sessions (each exchanges a few bytes), wait, read the proportional set size (Pss in /proc/PID/smaps_rollup) summed over the proxy's processes, then check that every held session still echoes. Memory per session is (PSS held − PSS of the fresh idle proxy) ÷ sessions held. A tier a subject cannot fill is reported as far as it got, and larger tiers are then skipped.`);
  L.push('');

  const ceil = ceilings(r);
  if (ceil.length > 0) {
    L.push('## What one relay hop costs here');
    L.push('');
    const refs = [
      has('tcp-relay') ? 'the TCP relay (no WebSocket, no features)' : undefined,
      has('ws-relay') ? 'the ws relay (the least a WebSocket relay in Node does)' : undefined,
    ].filter((x): x is string => x !== undefined);
    L.push(`Measured in the same run with ${refs.join(' and ')}: the part of each figure that no one-hop relay written in Node can avoid on this machine`
      + `${has('ws-relay') ? ', and which of the issue\'s targets no WebSocket relay written in Node reaches here' : ''}.`);
    L.push('');
    for (const c of ceil) L.push(`- ${c}`);
    L.push('');
  }

  const notesFile = path.join(here, 'notes.md');
  if (fs.existsSync(notesFile)) {
    L.push(fs.readFileSync(notesFile, 'utf8').trimEnd());
    L.push('');
  }

  if (r.notes.length > 0) {
    L.push('## Incidents in this run');
    L.push('');
    for (const n of r.notes) L.push(`- ${n}`);
    L.push('');
  }
  return L.join('\n');
}
