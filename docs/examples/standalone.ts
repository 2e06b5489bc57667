// A relay of your own: WebSockets on 127.0.0.1:6080 go to the VNC server on localhost:5901.
//   npx tsx docs/examples/standalone.ts      (PORT and TARGET override the defaults)
import { createServer } from '@tsockify/core';

const server = createServer({
  listen: { host: '127.0.0.1', port: Number(process.env.PORT ?? 6080) },
  target: process.env.TARGET ?? 'localhost:5901',
  heartbeatMs: 30_000, // ping every 30 s; a browser that misses two pings is dropped
});

// Attach listeners before listen(): every failure arrives as an event, nothing is thrown later.
server.on('session', (s) => console.log(`session ${s.id} opened: ${s.remoteAddress} -> ${s.target}`));
server.on('sessionClose', (s) =>
  console.log(`session ${s.id} closed: ${s.code} ${s.reason} (${s.initiator}), ` +
    `${s.bytesToClient} bytes to the browser, ${s.bytesToTarget} to the VNC server`));
server.on('reject', (r) => console.log(`refused ${r.remoteAddress}: ${r.status} ${r.code} ${r.reason}`));
server.on('error', (err) => console.error('server error:', err.message));

const addresses = await server.listen();
console.log(`listening on ${addresses.join(', ')}`);

// Sessions get 1001 "Server shutting down", then the process exits by itself.
process.once('SIGTERM', () => void server.close());
process.once('SIGINT', () => void server.close());
