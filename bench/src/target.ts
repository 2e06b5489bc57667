/**
 * The benchmark target, run as its own process: the same greeting/echo/push/sink protocol
 * (see protocol.ts) over raw TCP (what the proxies dial, and the raw TCP baseline) and over
 * a `ws` WebSocket server (the WebSocket baseline: a client talking to a server, no proxy).
 */
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { ACK, ACK_UNIT, CHUNK, GREETING, MODE_ECHO, MODE_PUSH, MODE_SINK } from './protocol.js';
import { serve } from './ipc.js';

const PUSH = randomBytes(CHUNK);
const ACK_BYTE = Buffer.from([ACK]);
/** Bytes queued per connection in push mode before waiting for the kernel to take them. */
const PUSH_HWM = 1024 * 1024;
/** Push writes issued per event-loop turn at most. */
const WRITES_PER_TURN = 16;

const tcpSockets = new Set<net.Socket>();
const wsSockets = new Set<WebSocket>();
let errors = 0;

function startTcp(): Promise<net.Server> {
  const server = net.createServer({ noDelay: true, highWaterMark: PUSH_HWM }, (socket) => {
    tcpSockets.add(socket);
    socket.on('error', () => { errors++; });
    socket.once('close', () => tcpSockets.delete(socket));
    socket.write(GREETING);
    socket.once('data', (first: Buffer) => {
      const rest = first.subarray(1);
      switch (first[0]) {
        case MODE_ECHO:
          if (rest.length > 0) socket.write(rest);
          socket.pipe(socket);
          break;
        case MODE_PUSH: {
          // On loopback the kernel often takes every write at once, so a plain "write until
          // full" loop never yields; a few writes per turn keep the event loop (and close) alive.
          let scheduled = false;
          const pump = (): void => {
            scheduled = false;
            for (let i = 0; i < WRITES_PER_TURN; i++) {
              if (socket.destroyed || !socket.write(PUSH)) return;
            }
            if (!scheduled) { scheduled = true; setImmediate(pump); }
          };
          socket.on('drain', pump);
          socket.on('data', () => {});
          pump();
          break;
        }
        case MODE_SINK: {
          let pending = rest.length;
          socket.on('data', (d: Buffer) => {
            pending += d.length;
            while (pending >= ACK_UNIT) {
              pending -= ACK_UNIT;
              socket.write(ACK_BYTE);
            }
          });
          break;
        }
        default:
          socket.destroy();
      }
    });
  });
  server.on('error', (err) => { process.stderr.write(`target tcp server: ${err.message}\n`); });
  server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 });
  return once(server, 'listening').then(() => server);
}

function startWs(): Promise<WebSocketServer> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: 0,
    backlog: 4096,
    perMessageDeflate: false,
    clientTracking: false,
    maxPayload: 16 * 1024 * 1024,
    handleProtocols: (protocols) => (protocols.has('binary') ? 'binary' : false),
  });
  wss.on('connection', (ws) => {
    wsSockets.add(ws);
    ws.on('error', () => { errors++; });
    ws.once('close', () => wsSockets.delete(ws));
    ws.send(GREETING);
    ws.once('message', (first: Buffer) => {
      const rest = first.subarray(1);
      switch (first[0]) {
        case MODE_ECHO:
          if (rest.length > 0) ws.send(rest);
          ws.on('message', (d: Buffer) => ws.send(d));
          break;
        case MODE_PUSH: {
          let scheduled = false;
          const pump = (): void => {
            scheduled = false;
            for (let i = 0; i < WRITES_PER_TURN; i++) {
              if (ws.readyState !== ws.OPEN || ws.bufferedAmount >= PUSH_HWM) return;
              ws.send(PUSH, sent);
            }
            if (!scheduled) { scheduled = true; setImmediate(pump); }
          };
          const sent = (err?: Error): void => { if (!err && !scheduled) pump(); };
          pump();
          break;
        }
        case MODE_SINK: {
          let pending = rest.length;
          ws.on('message', (d: Buffer) => {
            pending += d.length;
            while (pending >= ACK_UNIT) {
              pending -= ACK_UNIT;
              ws.send(ACK_BYTE);
            }
          });
          break;
        }
        default:
          ws.terminate();
      }
    });
  });
  wss.on('error', (err) => { process.stderr.write(`target ws server: ${err.message}\n`); });
  return once(wss, 'listening').then(() => wss);
}

const tcp = await startTcp();
const wss = await startWs();
serve(
  {
    counts: () => ({ tcp: tcpSockets.size, ws: wsSockets.size, errors }),
    closeAll: () => {
      for (const s of tcpSockets) s.destroy();
      for (const w of wsSockets) w.terminate();
      return { closed: true };
    },
  },
  {
    tcpPort: (tcp.address() as net.AddressInfo).port,
    wsPort: (wss.address() as net.AddressInfo).port,
  },
);
