/**
 * `pnpm bench [-- flags]`: run every scenario against tsockify, websockify, the two baselines
 * and the two reference relays, interleaved, and write docs/benchmarks.md and docs/benchmarks.svg.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { SCENARIOS, SUBJECTS } from './metrics.js';
import { renderMarkdown } from './report.js';
import { defaultWorkDir, repoRoot, runBenchmark, type BenchOptions, type Results } from './run.js';
import { renderSvg } from './svg.js';

const HELP = `Usage: pnpm bench [-- options]

Runs tsockify, Python websockify, a raw TCP baseline, a ws→ws baseline and two minimal
relays in Node as references (TCP relay, ws relay), interleaved round by round, and writes
the table and chart.

Options:
  --rounds N          rounds (default 3)
  --duration S        measured seconds per phase (default 3)
  --warmup S          unmeasured seconds before each phase (default 0.5)
  --scenarios LIST    comma list of ${SCENARIOS.join(', ')} (default all)
  --subjects LIST     comma list of ${SUBJECTS.join(', ')} (default all)
  --idle LIST         idle tiers, sessions to hold (default 1000,10000)
  --idle-time S       seconds allowed to open one idle tier (default 30)
  --parallel N        sessions at once in the parallel setup phase (default 200)
  --websockify PATH   Python websockify (default /usr/bin/websockify)
  --quick             tiny bounds for a smoke check (1 round, 0.25 s phases, 4 parallel, idle 50)
  --out FILE          markdown output (default docs/benchmarks.md; the SVG goes beside it)
  --json FILE         also write the raw results
  --render FILE       write the markdown and SVG from raw results saved with --json, without running
  -h, --help          this text
`;

function list<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((s) => s.trim()).filter(Boolean);
  for (const i of items) {
    if (!allowed.includes(i as T)) throw new Error(`invalid ${flag} "${i}": expected a comma list of ${allowed.join(', ')}`);
  }
  return items as T[];
}

function num(value: string | undefined, flag: string, dflt: number, min = 0): number {
  if (value === undefined) return dflt;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) throw new Error(`invalid ${flag} "${value}": expected a number ≥ ${min}`);
  return n;
}

export function parseBenchArgs(argv: string[], log: (line: string) => void = (l) => process.stderr.write(`${l}\n`)):
{ help: true } | { help: false; options: BenchOptions; out: string; json: string | undefined; render: string | undefined; quick: boolean } {
  const { values } = parseArgs({
    args: argv.filter((a) => a !== '--'),
    options: {
      rounds: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      scenarios: { type: 'string' },
      subjects: { type: 'string' },
      idle: { type: 'string' },
      'idle-time': { type: 'string' },
      parallel: { type: 'string' },
      websockify: { type: 'string' },
      quick: { type: 'boolean' },
      out: { type: 'string' },
      json: { type: 'string' },
      render: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) return { help: true };
  const quick = values.quick ?? false;
  const idle = values.idle === undefined ? (quick ? [50] : [1000, 10_000])
    : values.idle.split(',').map((s) => num(s.trim(), '--idle', 0, 1));
  const options: BenchOptions = {
    rounds: num(values.rounds, '--rounds', quick ? 1 : 3, 1),
    durationMs: num(values.duration, '--duration', quick ? 0.25 : 3, 0.05) * 1000,
    warmupMs: num(values.warmup, '--warmup', quick ? 0.05 : 0.5, 0) * 1000,
    scenarios: list(values.scenarios, SCENARIOS, '--scenarios') ?? [...SCENARIOS],
    subjects: list(values.subjects, SUBJECTS, '--subjects') ?? [...SUBJECTS],
    parallel: num(values.parallel, '--parallel', quick ? 4 : 200, 1),
    idleCounts: idle,
    idleTimeLimitMs: num(values['idle-time'], '--idle-time', quick ? 4 : 30, 0.1) * 1000,
    idleConcurrency: quick ? 20 : 100,
    rttMaxCount: quick ? 2000 : 50_000,
    setupMaxCount: quick ? 500 : 100_000,
    // websockify forks a process per session: 200 at once take it many seconds.
    sessionTimeoutMs: quick ? 5000 : 30_000,
    workDir: defaultWorkDir(),
    websockifyBin: values.websockify ?? '/usr/bin/websockify',
    tsockifyBin: path.join(repoRoot, 'packages/cli/bin/tsockify.js'),
    log,
  };
  const out = path.resolve(values.out ?? path.join(repoRoot, 'docs/benchmarks.md'));
  return { help: false, options, out, json: values.json, render: values.render, quick };
}

/** Run, then write the markdown and the SVG beside it. Returns the paths written. */
export async function benchMain(argv: string[], log?: (line: string) => void, signal?: AbortSignal): Promise<{ md: string; svg: string; results: Results } | undefined> {
  const parsed = parseBenchArgs(argv, log);
  if (parsed.help) {
    process.stdout.write(HELP);
    return undefined;
  }
  const { options, out, json, render, quick } = parsed;
  if (signal) options.signal = signal;
  let results: Results & { command?: string; quick?: boolean };
  let command = `pnpm bench${argv.length > 0 ? ` -- ${argv.filter((a) => a !== '--').join(' ')}` : ''}`;
  if (render) {
    fs.rmSync(options.workDir, { recursive: true, force: true });
    results = JSON.parse(fs.readFileSync(render, 'utf8')) as Results & { command?: string; quick?: boolean };
    command = results.command ?? command;
  } else {
    options.log(`tsockify bench: ${options.rounds} round(s), ${options.scenarios.join(' ')} × ${options.subjects.join(' ')}; logs in ${options.workDir}`);
    results = { ...(await runBenchmark(options)), command, quick };
  }
  const svgPath = out.replace(/\.md$/, '') + '.svg';
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(svgPath, renderSvg(results));
  fs.writeFileSync(out, renderMarkdown(results, { command, svgName: path.basename(svgPath), quick: results.quick ?? quick }));
  if (json) fs.writeFileSync(json, JSON.stringify(results, null, 2));
  options.log(`wrote ${out} and ${svgPath} in ${Math.round(results.seconds)} s`);
  return { md: out, svg: svgPath, results };
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === path.resolve(new URL(import.meta.url).pathname);
if (isMain) {
  // Finish the phase under way, then stop every process this run started.
  const stopping = new AbortController();
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      process.stderr.write(`bench: ${sig}: stopping after the current phase\n`);
      stopping.abort();
    });
  }
  benchMain(process.argv.slice(2), undefined, stopping.signal).then(
    () => { process.exitCode = 0; },
    (err: unknown) => {
      process.stderr.write(`bench: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    },
  );
}
