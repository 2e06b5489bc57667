import { forkHelper, startLogged, waitForPort, cpuSeconds, stop } from './src/proc.ts';
import { Rpc } from './src/ipc.ts';
const which = process.argv[2] ?? 'tsockify'; const op = process.argv[3] ?? 'rtt';
const t = forkHelper('/work/main/bench/src/target.ts', [], '/tmp/dbg_t.log');
const tr = new Rpc(t.child, 'target'); const ready = await tr.ready();
const c = forkHelper('/work/main/bench/src/client.ts', [], '/tmp/dbg_c.log');
const cr = new Rpc(c.child, 'client'); await cr.ready();
let p: any; let url = 'ws://127.0.0.1:17014/websockify';
if (which === 'tsockify-primed') p = startLogged(process.execPath, ['--import', '/tmp/exp/prime.mjs', '/work/main/packages/cli/bin/tsockify.js', '127.0.0.1:17014', `127.0.0.1:${ready.tcpPort}`], '/tmp/dbg_p.log');
else if (which === 'tsockify' || which === 'tsockify-tuned') p = startLogged(process.execPath, [...(process.env.NODEFLAGS ? process.env.NODEFLAGS.split(' ') : []), '/work/main/packages/cli/bin/tsockify.js', '127.0.0.1:17014', `127.0.0.1:${ready.tcpPort}`], '/tmp/dbg_p.log', which === 'tsockify-tuned' ? { ...process.env, GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=268435456:glibc.malloc.mmap_threshold=33554432' } : process.env);
else if (which === 'websockify') p = startLogged('/usr/bin/websockify', ['127.0.0.1:17014', `127.0.0.1:${ready.tcpPort}`], '/tmp/dbg_p.log');
else if (which.startsWith('script:') || which.startsWith('wscript:')) { p = startLogged(process.execPath, ['--import', 'file:///work/main/node_modules/.pnpm/tsx@4.23.15/node_modules/tsx/dist/esm/index.mjs', which.slice(which.indexOf(':') + 1), '17014', String(ready.tcpPort)], '/tmp/dbg_p.log'); if (which.startsWith('script:')) url = 'tcp://127.0.0.1:17014'; }
else if (which === 'tcp') url = `tcp://127.0.0.1:${ready.tcpPort}`; else url = `ws://127.0.0.1:${ready.wsPort}/`;
if (p) await waitForPort(17014, p);
const pid = p?.pid ?? t.pid; const c0 = cpuSeconds(pid);
const args: any = { url, warmupMs: 500, durationMs: Number(process.env.DUR ?? 3000), warmupCount: 500, maxCount: 100000, parallel: Number(process.env.PAR ?? 1), sessionTimeoutMs: 5000, minCompleted: 5 };
const call = cr.call<any>(op, args, 60000);
if (process.env.PSTAT && p) { await new Promise(r => setTimeout(r, 1500)); const { execSync } = await import('node:child_process'); console.log(execSync(`timeout -s INT 1 perf stat -e page-faults,task-clock -p ${p.pid} 2>&1 || true`).toString().split('\n').filter(l => /faults|task-clock/.test(l)).join('\n')); }
const res = await call;
const c1 = cpuSeconds(pid);
const extra = res.totalBytes ? ` MiB/s ${(res.bytes / 1048576 / res.seconds).toFixed(0)} cpu s/GiB ${((c1 - c0) / (res.totalBytes / 2 ** 30)).toFixed(2)}` : res.completed ? ` rate ${(res.completed / res.seconds).toFixed(0)}/s` : '';
console.log(which.padEnd(10), op, JSON.stringify(res), extra);
if (p) await stop(p); await stop(t); await stop(c);
