/**
 * The smallest relays this machine can run, for the report's ceilings (not a subject the
 * targets compare against): `ws` mode is a WebSocket-to-TCP relay with nothing but `ws` and
 * `net` (no auth, no logging, no limits); `tcp` mode is a TCP-to-TCP pipe, the floor for any
 * one-hop relay process written in Node.
 *   node --import tsx floor-relay.ts ws|tcp LISTEN_PORT TARGET_PORT
 */
import net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

const [mode, listenPort, targetPort] = process.argv.slice(2);
const dial = (): net.Socket => net.connect({ host: '127.0.0.1', port: Number(targetPort), noDelay: true });

if (mode === 'tcp') {
  net.createServer({ noDelay: true }, (client) => {
    const target = dial();
    client.on('error', () => target.destroy());
    target.on('error', () => client.destroy());
    client.pipe(target);
    target.pipe(client);
  }).listen(Number(listenPort), '127.0.0.1');
} else {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: Number(listenPort),
    perMessageDeflate: false,
    clientTracking: false,
    handleProtocols: (p) => (p.has('binary') ? 'binary' : false),
  });
  wss.on('connection', (ws: WebSocket) => {
    const target = dial();
    ws.on('error', () => target.destroy());
    target.on('error', () => ws.terminate());
    target.on('data', (d: Buffer) => {
      ws.send(d);
      if (ws.bufferedAmount > 1 << 20) { target.pause(); setImmediate(function wait() { if (ws.bufferedAmount > 1 << 19) setImmediate(wait); else target.resume(); }); }
    });
    target.on('close', () => ws.close());
    ws.on('message', (d: Buffer) => { if (!target.write(d)) { ws.pause(); target.once('drain', () => ws.resume()); } });
    ws.on('close', () => target.end());
  });
}
