// The benchmark peer: a minimal broadcast server on Node's `ws`, speaking the
// subset of Switchboard's protocol the load generator uses. Each connection
// joins the conversation named by ?conv=; a message.send is acked and
// broadcast as message.new to every member, serialized once. No storage, no
// auth: it is the floor a real server is compared against.
'use strict';
const http = require('http');
const { WebSocketServer } = require('ws');

const port = Number(process.env.PORT || 8090);
const rooms = new Map();
const server = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const wss = new WebSocketServer({ server, perMessageDeflate: false });

wss.on('connection', (ws, req) => {
  const conv = Number(new URL(req.url, 'http://x').searchParams.get('conv'));
  let room = rooms.get(conv);
  if (!room) { room = new Set(); rooms.set(conv, room); }
  room.add(ws);
  ws.send('{"type":"hello"}');
  ws.on('message', (data) => {
    let cmd;
    try { cmd = JSON.parse(data); } catch { return; }
    if (cmd.type !== 'message.send') return;
    ws.send(JSON.stringify({ type: 'ack', id: cmd.id, result: {} }));
    const frame = JSON.stringify({ type: 'message.new', conversation_id: conv,
                                   message: { author: 'x', text: cmd.text } });
    for (const member of room) member.send(frame);
  });
  ws.on('close', () => room.delete(ws));
});
server.listen(port, '127.0.0.1', () => console.log(`peer listening on 127.0.0.1:${port}`));
