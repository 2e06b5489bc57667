// tsockify inside your own HTTP server: your routes stay yours, WebSocket upgrades go to the relay.
//   npx tsx docs/examples/attach.ts          (PORT and VNC_PORT override the defaults)
import http from 'node:http';
import { createServer, type Target, type TokenPlugin } from '@tsockify/core';

// Desktops your application handed out, by token (in real life: a database or a signed token).
const desktops = new Map<string, Target>([
  ['d3f9c1a7', { host: '127.0.0.1', port: Number(process.env.VNC_PORT ?? 5901), meta: { subject: 'alice' } }],
]);

const tokens: TokenPlugin = {
  name: 'app-desktops',
  // Sync or async alike; null means "unknown token" and the browser gets 401, never a 101.
  lookup: (token) => desktops.get(token) ?? null,
};

const relay = createServer({ tokenPlugin: tokens });
relay.on('session', (s) => console.log(`${s.meta?.subject} connected to ${s.target}`));
relay.on('sessionClose', (s) => console.log(`${s.meta?.subject} left after ${s.durationMs} ms (${s.code})`));
relay.on('reject', (r) => console.log(`refused: ${r.status} ${r.reason}`));
relay.on('error', (err) => console.error('relay error:', err.message));

const app = http.createServer((req, res) => {
  if (req.url === '/healthz') {
    res.end(`ok, ${relay.sessionCount} live sessions\n`);
    return;
  }
  res.writeHead(404).end();
});
relay.attach(app); // every 'upgrade' on this server, e.g. ws://host:8080/websockify?token=d3f9c1a7

app.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => console.log(`listening on ${JSON.stringify(app.address())}`));

process.once('SIGTERM', () => {
  app.close();
  void relay.close(); // 1001 to every session
});
