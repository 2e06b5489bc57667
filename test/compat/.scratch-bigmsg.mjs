import net from 'node:net';
import { spawn } from 'node:child_process';
import { WebSocket } from 'ws';
const size = Number(process.argv[2]);
const t = net.createServer((s) => { let n = 0; const t0 = Date.now(); s.on('data', (d) => { n += d.length; if (n >= size) { console.log('target got', n, 'in', Date.now()-t0, 'ms'); process.exit(0); } }); });
t.listen(0, '127.0.0.1', () => {
  const port = t.address().port;
  const p = spawn('websockify', ['127.0.0.1:16999', `127.0.0.1:${port}`], { stdio: 'inherit' });
  setTimeout(() => {
    const ws = new WebSocket('ws://127.0.0.1:16999/');
    ws.on('open', () => ws.send(Buffer.alloc(size, 0x5a)));
    ws.on('close', (c, r) => console.log('close', c, r.toString()));
  }, 800);
  setTimeout(() => { console.log('timeout'); p.kill(); process.exit(1); }, 30000);
  process.on('exit', () => p.kill());
});
