// A task for namespace tests, run with `ip netns exec NS node task-server.mjs NAME`: HTTP on 80 (IPv4
// and IPv6) and 8081 answering `NAME CLIENT-ADDRESS` (so a test sees who answered and whom it saw), `/slow`
// streaming for about two seconds, and UDP on 5353 answering `NAME`. Plain JS: runs without a build.
import { createSocket } from 'node:dgram';
import { createServer } from 'node:http';

const name = process.argv[2] ?? 'task';
const handler = (req, res) => {
  const who = `${name} ${req.socket.remoteAddress}`;
  if (req.url?.startsWith('/slow')) {
    res.writeHead(200, { 'content-type': 'text/plain' });
    let n = 0;
    const t = setInterval(() => {
      res.write(`${who} chunk ${n}\n`);
      if (++n === 20) {
        clearInterval(t);
        res.end();
      }
    }, 100);
    return;
  }
  res.writeHead(200, { 'content-type': 'text/plain' });
  res.end(who);
};
// IPv4 listeners, and IPv6 ones beside them (v6 only, so IPv4 clients keep their plain addresses).
let pending = 4;
const ready = () => {
  if (--pending === 0) process.stdout.write('ready\n');
};
for (const port of [80, 8081]) {
  const srv = createServer(handler);
  srv.keepAliveTimeout = 60_000;
  srv.listen(port, '0.0.0.0', ready);
}
// A namespace without IPv6 (or its loopback down) still serves IPv4.
const six = createServer(handler);
six.on('error', () => ready());
six.listen({ port: 80, host: '::', ipv6Only: true }, ready);
const udp = createSocket('udp4');
udp.on('message', (_msg, rinfo) => udp.send(name, rinfo.port, rinfo.address));
udp.bind(5353, '0.0.0.0', ready);
process.on('SIGTERM', () => process.exit(0));
