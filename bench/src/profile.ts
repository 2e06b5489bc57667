/**
 * `pnpm --filter @tsockify/bench run profile -- cpu|heap [flags]`: the profiles behind the
 * notes in docs/benchmarks.md, rerunnable. The tsockify CLI runs as its own process with
 * `--cpu-prof` or `--heapsnapshot-signal`; the target and client are the benchmark's own.
 *
 *   cpu  --scenario down|up|rtt|setup-seq|setup-par [--duration S] [--parallel N]
 *        prints where tsockify's main thread spent its time: by function (self) and by
 *        package (inclusive: tsockify core, CLI, ws, pino, node internals, GC, idle).
 *   heap --sessions N
 *        holds N idle sessions, snapshots the heap before and after, and prints what each
 *        session costs by object type (self size ÷ N).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Rpc } from './ipc.js';
import { forkHelper, freePort, pssKiB, startLogged, stop, waitForPort } from './proc.js';
import { defaultWorkDir, repoRoot } from './run.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface CpuNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }
interface CpuProfile { nodes: CpuNode[]; samples: number[]; timeDeltas: number[] }

/** Where a frame comes from, for the inclusive summary. */
function bucket(url: string, fn: string): string {
  if (fn === '(root)') return '(root)';
  if (fn === '(idle)') return 'idle (waiting in epoll)';
  if (fn === '(garbage collector)') return 'garbage collector';
  if (fn === '(program)') return 'native, outside JS (libuv, syscalls)';
  if (url.includes('/packages/core/')) return 'tsockify core';
  if (url.includes('/packages/cli/')) return 'tsockify CLI';
  if (url.includes('/pino') || url.includes('/@pinojs/') || url.includes('/sonic-boom/')) return 'pino (logging)';
  if (url.includes('/ws/lib/')) return 'ws';
  if (url.startsWith('node:')) return 'node internals';
  if (url === '') return 'native, called from JS (syscalls)';
  return 'other';
}

export function summariseCpuProfile(p: CpuProfile, top = 25): string {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + dt);
    total += dt;
  });
  const selfBy = new Map<string, number>();
  const bucketSelf = new Map<string, number>();
  const bucketIncl = new Map<string, number>();
  // Inclusive per bucket: a frame's subtree counts once for the outermost frame of that bucket.
  const walk = (id: number, open: Set<string>): number => {
    const n = byId.get(id)!;
    const cf = n.callFrame;
    const b = bucket(cf.url, cf.functionName);
    const t0 = self.get(id) ?? 0;
    if (t0 > 0) {
      const key = `${cf.functionName || '(anonymous)'}  ${cf.url.replace(/^.*node_modules\//, '').replace(`file://${repoRoot}/`, '')}:${cf.lineNumber + 1}`;
      selfBy.set(key, (selfBy.get(key) ?? 0) + t0);
      bucketSelf.set(b, (bucketSelf.get(b) ?? 0) + t0);
    }
    const first = !open.has(b);
    if (first) open.add(b);
    let t = t0;
    for (const c of n.children ?? []) t += walk(c, open);
    if (first) {
      open.delete(b);
      bucketIncl.set(b, (bucketIncl.get(b) ?? 0) + t);
    }
    return t;
  };
  walk(p.nodes[0]!.id, new Set());
  const pct = (t: number): string => `${((t / total) * 100).toFixed(1).padStart(5)}%`;
  const lines: string[] = [`main thread, ${(total / 1e6).toFixed(2)} s sampled`, '', 'by origin (self | inclusive):'];
  for (const [b, t] of [...bucketSelf].sort((x, y) => y[1] - x[1])) if (b !== '(root)') lines.push(`  ${pct(t)} | ${pct(bucketIncl.get(b) ?? 0)}  ${b}`);
  lines.push('', `top ${top} functions by self time:`);
  for (const [k, t] of [...selfBy].sort((x, y) => y[1] - x[1]).slice(0, top)) lines.push(`  ${pct(t)}  ${k}`);
  return lines.join('\n');
}

interface HeapSnapshot {
  snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
  nodes: number[];
  strings: string[];
}

/** Self size by "type: constructor", for one snapshot. */
function heapBySize(file: string): Map<string, { count: number; size: number }> {
  const snap = JSON.parse(fs.readFileSync(file, 'utf8')) as HeapSnapshot;
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const step = f.length;
  const iType = f.indexOf('type');
  const iName = f.indexOf('name');
  const iSize = f.indexOf('self_size');
  const out = new Map<string, { count: number; size: number }>();
  for (let i = 0; i < snap.nodes.length; i += step) {
    const type = types[snap.nodes[i + iType]!]!;
    const name = type === 'string' || type === 'concatenated string' || type === 'sliced string' ? '(strings)'
      : type === 'code' ? '(compiled code)' : snap.strings[snap.nodes[i + iName]!]!.slice(0, 60);
    const key = `${type}: ${name}`;
    const e = out.get(key) ?? { count: 0, size: 0 };
    e.count++;
    e.size += snap.nodes[i + iSize]!;
    out.set(key, e);
  }
  return out;
}

export function summariseHeapGrowth(before: string, after: string, sessions: number, top = 30): string {
  const a = heapBySize(before);
  const b = heapBySize(after);
  const rows: Array<[string, number, number]> = [];
  let total = 0;
  for (const [k, v] of b) {
    const w = a.get(k) ?? { count: 0, size: 0 };
    const d = v.size - w.size;
    total += d;
    rows.push([k, (v.count - w.count) / sessions, d / sessions]);
  }
  const lines = [`JS heap growth: ${(total / sessions).toFixed(0)} bytes per session (self sizes; V8 page slack and native memory not included)`, '', ' per session   bytes  object'];
  for (const [k, n, d] of rows.sort((x, y) => y[2] - x[2]).slice(0, top)) lines.push(`${n.toFixed(2).padStart(11)} ${d.toFixed(0).padStart(7)}  ${k}`);
  return lines.join('\n');
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2).filter((a) => a !== '--');
  const mode = argv[0];
  const { values } = parseArgs({
    args: argv.slice(1),
    options: {
      scenario: { type: 'string', default: 'down' },
      duration: { type: 'string', default: '3' },
      parallel: { type: 'string', default: '50' },
      sessions: { type: 'string', default: '2000' },
      keep: { type: 'boolean', default: false },
    },
  });
  if (mode !== 'cpu' && mode !== 'heap') {
    process.stderr.write('usage: profile cpu --scenario down|up|rtt|setup-seq|setup-par [--duration S] [--parallel N] | heap [--sessions N] [--keep]\n');
    process.exitCode = 2;
    return;
  }
  const dir = defaultWorkDir();
  const target = forkHelper(path.join(repoRoot, 'bench/src/target.ts'), [], path.join(dir, 'target.log'));
  const client = forkHelper(path.join(repoRoot, 'bench/src/client.ts'), [], path.join(dir, 'client.log'));
  const trpc = new Rpc(target.child, 'target');
  const crpc = new Rpc(client.child, 'client');
  let proxy: Awaited<ReturnType<typeof startLogged>> | undefined;
  try {
    const ready = await trpc.ready();
    await crpc.ready();
    const port = await freePort();
    const flags = mode === 'cpu' ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${dir}`];
    proxy = startLogged(process.execPath, [...flags, path.join(repoRoot, 'packages/cli/bin/tsockify.js'), `127.0.0.1:${port}`, `127.0.0.1:${ready.tcpPort as number}`], path.join(dir, 'tsockify.log'));
    await waitForPort(port, proxy);
    const url = `ws://127.0.0.1:${port}/websockify`;
    const durationMs = Number(values.duration) * 1000;
    if (mode === 'cpu') {
      const s = values.scenario;
      const common = { url, warmupMs: 500, durationMs };
      if (s === 'down' || s === 'up') await crpc.call(s, common, durationMs + 30_000);
      else if (s === 'rtt') await crpc.call('rtt', { ...common, warmupCount: 200, maxCount: 1e6 }, durationMs + 30_000);
      else await crpc.call('setup', { ...common, parallel: s === 'setup-seq' ? 1 : Number(values.parallel), maxCount: 1e6, sessionTimeoutMs: 10_000, minCompleted: 1 }, durationMs + 60_000);
      await stop(proxy);
      const file = fs.readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`no .cpuprofile in ${dir}`);
      process.stdout.write(`${summariseCpuProfile(JSON.parse(fs.readFileSync(path.join(dir, file), 'utf8')) as CpuProfile)}\n`);
    } else {
      const n = Number(values.sessions);
      const snap = async (): Promise<string> => {
        const known = new Set(fs.readdirSync(dir));
        process.kill(proxy!.pid, 'SIGUSR2');
        for (let i = 0; i < 300; i++) {
          await sleep(100);
          const f = fs.readdirSync(dir).find((x) => x.endsWith('.heapsnapshot') && !known.has(x));
          // Complete once it parses (it is written in pieces, with pauses).
          if (f) {
            try {
              JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
              return path.join(dir, f);
            } catch { /* still being written */ }
          }
        }
        throw new Error('heap snapshot not written in 30 s');
      };
      await sleep(500);
      const before = await snap();
      const pss0 = pssKiB(proxy.pid).kib;
      const open = await crpc.call<{ held: number }>('idleOpen', { url, count: n, concurrency: 100, timeLimitMs: 120_000, sessionTimeoutMs: 10_000 }, 150_000);
      await sleep(1000);
      const pss1 = pssKiB(proxy.pid).kib;
      const after = await snap();
      process.stdout.write(`${open.held} sessions held; PSS grew ${((pss1 - pss0) / open.held).toFixed(2)} KiB per session (the snapshot itself inflates this)\n\n`);
      process.stdout.write(`${summariseHeapGrowth(before, after, open.held)}\n`);
      await crpc.call('idleClose', { timeLimitMs: 1000 }, 15_000);
    }
  } finally {
    if (proxy) await stop(proxy);
    await stop(client);
    await stop(target);
    if (values.keep) process.stderr.write(`profiles kept in ${dir}\n`);
    else fs.rmSync(dir, { recursive: true, force: true });
  }
}

await main();
