/**
 * A TCP-to-TCP relay in a dozen lines of Node (`socket.pipe` both ways): a reference, not a
 * contender. It shows what one relay hop costs on this machine before any WebSocket work, so
 * the report can say which targets no one-hop relay written in Node can reach here.
 *   node --import tsx tcp-relay.ts LISTEN_PORT TARGET_PORT
 */
import net from 'node:net';

const [listenPort, targetPort] = process.argv.slice(2).map(Number);
net.createServer({ noDelay: true }, (client) => {
  const target = net.connect({ host: '127.0.0.1', port: targetPort!, noDelay: true });
  client.on('error', () => target.destroy());
  target.on('error', () => client.destroy());
  client.pipe(target);
  target.pipe(client);
}).listen(listenPort, '127.0.0.1');
