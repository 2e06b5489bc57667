/** The subjects, scenarios and figures of the benchmark, in the order the report shows them. */

export const SUBJECTS = ['tsockify', 'tsockify-w2', 'websockify', 'tcp', 'ws', 'tcp-relay', 'ws-relay'] as const;
export type SubjectName = (typeof SUBJECTS)[number];

export const SUBJECT_LABEL: Record<SubjectName, string> = {
  tsockify: 'tsockify',
  'tsockify-w2': 'tsockify, 2 workers',
  websockify: 'websockify',
  tcp: 'raw TCP',
  ws: 'ws→ws',
  'tcp-relay': 'TCP relay',
  'ws-relay': 'ws relay',
};

/**
 * The environment of the helper processes (client, target): glibc told not to return freed heap
 * memory to the kernel until 256 MiB are free at its top. Node reads every socket into a fresh
 * 64 KiB buffer; when glibc trims the freed ones away, the next reads fault the pages back in
 * (see the profiling notes), and a load generator in that state would set the pace instead of
 * the subject. The tsockify CLI primes the same threshold itself (packages/core/src/allocator.ts).
 */
export const TRIM_ENV = { GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=268435456' };

/** The two subjects that are proxies (what the targets are about). */
export const PROXIES: readonly SubjectName[] = ['tsockify', 'websockify'];

/**
 * The TCP relay is a reference for one relay hop in Node; holding idle sessions says nothing
 * there that raw TCP does not, so it sits that scenario out. tsockify with `--workers 2` runs
 * the scenarios with many sessions at once: parallel setup, and idle sessions, where two
 * processes can hold more than one process's open-files limit allows. The ws relay runs everything: it
 * is also the memory floor for a relay holding a WebSocket and a TCP socket per session.
 */
export function runs(subject: SubjectName, scenario: ScenarioName): boolean {
  if (subject === 'tcp-relay') return scenario !== 'idle';
  // One session lives in one worker: only the many-session scenarios can tell workers apart.
  if (subject === 'tsockify-w2') return scenario === 'setup-par' || scenario === 'idle';
  return true;
}

export const SCENARIOS = ['down', 'up', 'rtt', 'setup-seq', 'setup-par', 'idle'] as const;
export type ScenarioName = (typeof SCENARIOS)[number];

export interface MetricDef {
  id: string;
  label: string;
  unit: string;
  better: 'higher' | 'lower';
  scenario: ScenarioName;
  /** Only a relay process has it (CPU of the relay): the baselines show a dash. */
  proxiesOnly?: boolean;
  /** For the baselines the figure is the endpoint's (the target process), not a proxy's. */
  endpointForBaselines?: boolean;
}

export function metricDefs(idleCounts: number[]): MetricDef[] {
  const defs: MetricDef[] = [
    { id: 'down', label: 'downstream (target pushes 64 KiB writes)', unit: 'MiB/s', better: 'higher', scenario: 'down' },
    { id: 'down.cpu', label: 'proxy CPU per GiB, downstream', unit: 'CPU s/GiB', better: 'lower', scenario: 'down', proxiesOnly: true },
    { id: 'up', label: 'upstream (64 KiB messages to a sink)', unit: 'MiB/s', better: 'higher', scenario: 'up' },
    { id: 'up.cpu', label: 'proxy CPU per GiB, upstream', unit: 'CPU s/GiB', better: 'lower', scenario: 'up', proxiesOnly: true },
    { id: 'rtt.p50', label: 'round trip, 64-byte echo, p50', unit: 'µs', better: 'lower', scenario: 'rtt' },
    { id: 'rtt.p99', label: 'round trip, 64-byte echo, p99', unit: 'µs', better: 'lower', scenario: 'rtt' },
    { id: 'seq.rate', label: 'session setup, sequential', unit: 'sessions/s', better: 'higher', scenario: 'setup-seq' },
    { id: 'seq.ttfb', label: 'upgrade request → first target byte, sequential, p50', unit: 'ms', better: 'lower', scenario: 'setup-seq' },
    { id: 'par.rate', label: 'session setup, parallel', unit: 'sessions/s', better: 'higher', scenario: 'setup-par' },
    { id: 'par.ttfb', label: 'upgrade request → first target byte, parallel, p50', unit: 'ms', better: 'lower', scenario: 'setup-par' },
  ];
  for (const n of idleCounts) {
    defs.push({ id: `idle.${n}.kib`, label: `memory per idle session, ${n.toLocaleString('en-US')} held (PSS)`, unit: 'KiB', better: 'lower', scenario: 'idle', endpointForBaselines: true });
    defs.push({ id: `idle.${n}.held`, label: `sessions held and echoing, ${n.toLocaleString('en-US')} asked`, unit: 'sessions', better: 'higher', scenario: 'idle' });
  }
  return defs;
}
