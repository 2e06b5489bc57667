import fs from 'node:fs';
import { forkHelper, startLogged, waitForPort, cpuSeconds, stop } from './src/proc.ts';
import { Rpc } from './src/ipc.ts';
const parallel = Number(process.argv[2] ?? 1);
const t = forkHelper('/work/main/bench/src/target.ts', [], '/tmp/dbg_t.log');
const tr = new Rpc(t.child, 'target'); const ready = await tr.ready();
const c = forkHelper('/work/main/bench/src/client.ts', [], '/tmp/dbg_c.log');
const cr = new Rpc(c.child, 'client'); await cr.ready();
fs.rmSync('/tmp/prof', { recursive: true, force: true });
const which = process.argv[3] ?? 'tsockify';
const url = which === 'ws' ? `ws://127.0.0.1:${ready.wsPort}/` : 'ws://127.0.0.1:17013/websockify';
let p: any;
if (which === 'tsockify') { p = startLogged(process.execPath, [...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/prof'] : []), '/work/main/packages/cli/bin/tsockify.js', '127.0.0.1:17013', `127.0.0.1:${ready.tcpPort}`], '/tmp/dbg_p.log'); await waitForPort(17013, p); }
const pid = p?.pid ?? t.pid;
const c0 = cpuSeconds(pid);
const res = await cr.call<any>('setup', { url, parallel, warmupMs: 500, durationMs: Number(process.env.DUR ?? 3000), maxCount: 100000, sessionTimeoutMs: 5000, minCompleted: 5 }, 60000);
const c1 = cpuSeconds(pid);
console.log(which, 'parallel', parallel, (res.completed / res.seconds).toFixed(0), '/s', res, 'server cpu ms/session', ((c1 - c0) * 1000 / res.completed).toFixed(3));
if (p) await stop(p); await stop(t); await stop(c);
