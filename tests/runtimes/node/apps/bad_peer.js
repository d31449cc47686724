// A bad inspector: listens on PORT (0: any) in this process and misbehaves as MODE says.
//   garbage  answers every connection with random bytes
//   http404  answers HTTP 404 (a web server, not an inspector)
//   stall    accepts /json/list, upgrades the WebSocket, then never answers a message
//   close    a real-looking inspector that sends half a heap snapshot and closes
//   huge     announces a WebSocket frame of 2^62 bytes and sends endless data
// Prints "listening PORT" when ready.
'use strict';
const net = require('net');
const crypto = require('crypto');
const mode = process.argv[2] || 'garbage';
const port = Number(process.argv[3] || 0);
const id = '0f3c2a6e-1b2d-4c5e-8f90-1234567890ab';

function frame(text) {
  const payload = Buffer.from(text);
  let head;
  if (payload.length < 126) head = Buffer.from([0x81, payload.length]);
  else if (payload.length < 65536) { head = Buffer.alloc(4); head[0] = 0x81; head[1] = 126; head.writeUInt16BE(payload.length, 2); }
  else { head = Buffer.alloc(10); head[0] = 0x81; head[1] = 127; head.writeBigUInt64BE(BigInt(payload.length), 2); }
  return Buffer.concat([head, payload]);
}

const server = net.createServer((sock) => {
  sock.on('error', () => {});
  if (mode === 'garbage') {
    sock.end(crypto.randomBytes(4096));
    return;
  }
  let buf = '';
  let upgraded = false;
  sock.on('data', (d) => {
    if (upgraded) {
      if (mode === 'stall') return;
      if (mode === 'huge') {
        const head = Buffer.alloc(10); head[0] = 0x81; head[1] = 127; head.writeBigUInt64BE(1n << 62n, 2);
        sock.write(head);
        const junk = Buffer.alloc(1 << 20, 0x61);
        const pump = () => { while (sock.write(junk)) {} };
        sock.on('drain', pump); pump();
        return;
      }
      if (mode === 'close') {
        const chunk = JSON.stringify({ method: 'HeapProfiler.addHeapSnapshotChunk', params: { chunk: '{"snapshot":{"meta":{"node_fields":["type"' } });
        sock.write(frame(chunk));
        setTimeout(() => sock.destroy(), 100);
      }
      return;
    }
    buf += d.toString('latin1');
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = buf.slice(0, end);
    if (mode === 'http404') {
      sock.end('HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here\n');
      return;
    }
    if (head.startsWith('GET /json')) {
      const body = JSON.stringify([{ id, type: 'node', webSocketDebuggerUrl: `ws://127.0.0.1:${server.address().port}/${id}` }]);
      sock.end(`HTTP/1.0 200 OK\r\nContent-Type: application/json; charset=UTF-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
      return;
    }
    const key = /Sec-WebSocket-Key: *(\S+)/i.exec(head);
    if (!key) { sock.destroy(); return; }
    const accept = crypto.createHash('sha1').update(key[1] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    sock.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    upgraded = true;
  });
});
server.listen(port, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
