#!/usr/bin/env node
// A terminal chat on @switchboard/client, in Node (ws as the WebSocket).
//
//   TOKEN=$(switchboard token --config config/switchboard.toml --user alice)
//   node examples/node-chat.mjs --url ws://127.0.0.1:8080/ws --token "$TOKEN" --with bob
//
// Options:
//   --url URL            the host's WebSocket endpoint (default ws://127.0.0.1:8080/ws)
//   --token JWT          or the environment variable SWITCHBOARD_TOKEN
//   --with USER          chat in the direct conversation with USER (created if new)
//   --conversation ID    or in an existing conversation
// Each line read from standard input is sent; every message of the
// conversation is printed. At the end of input it waits for its sends to be
// acknowledged, then exits (so `echo hi | node examples/node-chat.mjs …` works).
import readline from 'node:readline';
import WebSocket from 'ws';

import { SwitchboardClient } from '../index.js';

function args(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i++) {
    const m = /^--([a-z-]+)$/.exec(argv[i]);
    if (!m) throw new Error(`unexpected argument ${argv[i]}`);
    out[m[1]] = argv[++i];
  }
  return out;
}

const opts = args(process.argv.slice(2));
const token = opts.token ?? process.env.SWITCHBOARD_TOKEN;
if (!token || (!opts.with && !opts.conversation)) {
  console.error('usage: node-chat.mjs [--url URL] --token JWT (--with USER | --conversation ID)');
  process.exit(2);
}

const client = new SwitchboardClient({
  url: opts.url ?? 'ws://127.0.0.1:8080/ws',
  getToken: () => token, // a real app fetches a fresh one from its backend here
  WebSocket,
});

const print = (line) => console.log(line);
const time = (ms) => new Date(ms).toISOString().slice(11, 19);
const show = (m) => print(`[${time(m.created_at)}] ${m.author}: ${m.deleted ? '(deleted)' : m.text}`);

client.on('state', (state) => {
  if (state === 'reconnecting') print('… reconnecting');
  if (state === 'offline') print('… offline');
});
client.on('error', (err) => print(`! ${err.code}: ${err.message}`));

const hello = await client.connect();
print(`connected as ${hello.user_id}`);

const id = opts.conversation
  ? Number(opts.conversation)
  : (await client.createConversation({ kind: 'direct', members: [opts.with] })).conversation.id;

// The newest messages first, then live ones: the history page is a snapshot,
// and the client delivers every event after it exactly once.
const page = await client.history(id, { limit: 10 });
for (const e of page.events) if (e.type === 'message.new') show(e.message);

client.on('message.new', (e) => {
  if (e.conversation_id === id) show(e.message);
});
client.on('message.edit', (e) => {
  if (e.conversation_id === id) print(`  (edited) ${e.message.author}: ${e.message.text}`);
});
client.on('typing.start', (e) => {
  if (e.conversation_id === id) print(`  ${e.user_id} is typing…`);
});
client.on('resync', (r) => {
  if (r.conversation_id !== id) return;
  print(`… reloaded (${r.reason})`);
  for (const e of r.events) if (e.type === 'message.new') show(e.message);
});

const sends = [];
const rl = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (!line.trim()) continue;
  // Sent exactly once, even across reconnects; the ack arrives after storage committed it.
  sends.push(client.send(id, line).catch((err) => print(`! not sent (${err.code}): ${line}`)));
}
await Promise.all(sends);
await client.close();
