/**
 * The least a WebSocket-to-TCP relay in Node does (`ws` in, `net` out, simple backpressure, no
 * auth, no limits, no logging): a reference, not a contender. It shows the ceiling for any
 * WebSocket relay written in Node on this machine, so the report can say which targets are out
 * of reach and by how much. Like tsockify it dials the target before answering the upgrade.
 *   node --import tsx ws-relay.ts LISTEN_PORT TARGET_PORT
 */
import http from 'node:http';
import net from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';

/** Bytes queued towards the client past which the target is paused until ws has written them. */
const HIGH_WATER = 1024 * 1024;

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
});

function relay(ws: WebSocket, target: net.Socket): void {
  const sent = (): void => { if (target.isPaused() && ws.bufferedAmount <= HIGH_WATER) target.resume(); };
  target.on('data', (chunk: Buffer) => {
    ws.send(chunk, sent);
    if (ws.bufferedAmount > HIGH_WATER) target.pause();
  });
  ws.on('message', (data: Buffer) => { if (!target.write(data)) ws.pause(); });
  target.on('drain', () => ws.resume());
  target.once('close', () => ws.close());
  // Not end(): a target paused on backpressure would never read the FIN that lets it close.
  ws.once('close', () => target.destroySoon());
  ws.on('error', () => target.destroy());
}

const server = http.createServer();
server.on('upgrade', (req, socket, head) => {
  const target = net.connect({ host: '127.0.0.1', port: targetPort!, noDelay: true });
  // Until the upgrade is answered (or refused), a client that leaves takes its dial with it.
  const clientGone = (): void => { target.destroy(); };
  socket.on('error', () => socket.destroy());
  socket.once('close', clientGone);
  target.on('error', () => socket.destroy());
  target.once('connect', () => wss.handleUpgrade(req, socket, head, (ws) => {
    socket.off('close', clientGone);
    relay(ws, target);
  }));
});
server.listen(listenPort, '127.0.0.1');
