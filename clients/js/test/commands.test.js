// Commands: typed errors from the real host, client-side timeouts and codes,
// the 16-in-flight limit, history/subscribe running alone, and backing off on
// rate_limited.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MemoryPositionStore, SwitchboardClient, SwitchboardError, isSwitchboardError } from '../index.js';
import { Host, makeClient, waitFor, WebSocket } from '../test-support/host.js';

/**
 * A scripted stand-in for a socket (unit tests of the client's own queue and
 * timers; everything about the host itself is tested against the real one).
 * It says hello, records what the client writes, and answers only when told.
 */
function scriptedSocket() {
  const script = { sockets: [], autoList: true };
  class Scripted extends EventTarget {
    constructor(url) {
      super();
      this.url = url;
      this.sent = [];
      this.readyState = 0;
      script.sockets.push(this);
      setTimeout(() => {
        this.readyState = 1;
        this.dispatchEvent(new Event('open'));
        this.push({ type: 'hello', user_id: 'u', session_id: 1, conversations: 0, limits: { commands_per_second: 50 } });
      }, 0);
    }
    push(frame) {
      const ev = new Event('message');
      ev.data = JSON.stringify(frame);
      this.dispatchEvent(ev);
    }
    send(data) {
      const frame = JSON.parse(data);
      this.sent.push(frame);
      if (script.autoList && frame.type === 'conversation.list') {
        setTimeout(() => this.push({ type: 'ack', id: frame.id, result: { conversations: [] } }), 0);
      }
    }
    ack(frame, result = {}) {
      this.push({ type: 'ack', id: frame.id, result });
    }
    close(code = 1000, reason = '') {
      if (this.readyState === 3) return;
      this.readyState = 3;
      setTimeout(() => {
        const ev = new Event('close');
        ev.code = code;
        ev.reason = reason;
        this.dispatchEvent(ev);
      }, 0);
    }
  }
  script.WebSocket = Scripted;
  return script;
}

function scriptedClient(options = {}) {
  const script = scriptedSocket();
  const client = new SwitchboardClient({
    url: 'ws://scripted/ws',
    token: 't',
    WebSocket: script.WebSocket,
    backoff: { initialMs: 10, maxMs: 50 },
    heartbeatMs: 0,
    ...options,
  });
  return { script, client };
}

test('typed errors carry the protocol code', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());
  const alice = makeClient(host, 'alice');
  const bob = makeClient(host, 'bob');
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  const { conversation } = await alice.createConversation({ kind: 'group', name: 'errors' });

  const cases = [
    [() => alice.getConversation(999999), 'not_found'],
    [() => bob.getConversation(conversation.id), 'forbidden'],
    [() => bob.send(conversation.id, 'hi'), 'forbidden'],
    [() => alice.send(conversation.id, 'x'.repeat(9000)), 'too_large'],
    [() => alice.history(conversation.id, { before: 5, after: 1 }), 'bad_request'],
    [() => alice.createConversation({ kind: 'nonsense' }), 'bad_request'],
    [() => alice.command('no.such.command', {}), 'unknown_type'],
  ];
  for (const [run, code] of cases) {
    await assert.rejects(run(), (err) => {
      assert.ok(err instanceof SwitchboardError, String(err));
      assert.equal(err.code, code, `${err.command}: ${err.message}`);
      assert.equal(err.fromServer, true);
      assert.ok(err.message.length > 0);
      return true;
    });
  }
  // The connection stays usable after errors.
  assert.deepEqual(await alice.ping(), {});
});

test('a command with no answer times out with code `timeout`; a late answer is dropped', async () => {
  const { script, client } = scriptedClient({ commandTimeoutMs: 80 });
  await client.connect();
  const started = Date.now();
  await assert.rejects(client.ping(), (err) => isSwitchboardError(err, 'timeout') && err.command === 'ping');
  assert.ok(Date.now() - started >= 75);
  // Per-call timeout, and the late answer changes nothing.
  const p = client.getConversation(1, {});
  const q = client.command('conversation.get', { conversation_id: 2 }, { timeout: 20 });
  await assert.rejects(q, (err) => err.code === 'timeout');
  const socket = script.sockets[0];
  const late = socket.sent.find((f) => f.type === 'conversation.get' && f.conversation_id === 2);
  socket.ack(late, { conversation: { id: 2 } });
  socket.ack(socket.sent.find((f) => f.conversation_id === 1), { conversation: { id: 1 }, members: [] });
  assert.equal((await p).conversation.id, 1);
  await client.close();
});

test('close() rejects queued and unanswered commands with `closed`; later commands too', async () => {
  const { client } = scriptedClient();
  await client.connect();
  const pending = [client.ping(), client.send(1, 'never acked'), client.history(1)];
  const closing = client.close();
  for (const p of pending) await assert.rejects(p, (err) => err.code === 'closed');
  await closing;
  assert.equal(client.state, 'closed');
  await assert.rejects(client.ping(), (err) => err.code === 'closed');
});

test('a drop fails unsafe commands with `disconnected` and writes safe ones again', async () => {
  const { script, client } = scriptedClient();
  await client.connect();
  await waitFor(() => script.sockets[0].sent.some((f) => f.type === 'conversation.list'));
  const edit = client.editMessage(7, 'changed');
  const get = client.getConversation(3);
  const first = script.sockets[0];
  await waitFor(() => first.sent.some((f) => f.type === 'message.edit') && first.sent.some((f) => f.type === 'conversation.get'));
  first.close(1006, '');
  await assert.rejects(edit, (err) => err.code === 'disconnected' && err.command === 'message.edit');
  await waitFor(() => script.sockets[1]?.sent.some((f) => f.type === 'conversation.get'), { message: 'get written again' });
  const again = script.sockets[1].sent.find((f) => f.type === 'conversation.get');
  script.sockets[1].ack(again, { conversation: { id: 3 }, members: [] });
  assert.equal((await get).conversation.id, 3);
  assert.equal(script.sockets[1].sent.filter((f) => f.type === 'message.edit').length, 0);
  await client.close();
});

test('at most 16 commands in flight; history runs alone', async () => {
  const { script, client } = scriptedClient();
  await client.connect();
  const socket = script.sockets[0];
  await waitFor(() => socket.sent.some((f) => f.type === 'conversation.list'));
  await waitFor(() => client.state === 'open');
  // let the sync finish (no positions: no subscribe)
  await new Promise((r) => setImmediate(r));
  const base = socket.sent.length;
  const pings = Array.from({ length: 40 }, () => client.ping());
  await waitFor(() => socket.sent.length - base === 16);
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(socket.sent.length - base, 16, 'the 17th waits for an answer');
  socket.ack(socket.sent[base]);
  await waitFor(() => socket.sent.length - base === 17);
  for (let i = base + 1; i < socket.sent.length; i++) socket.ack(socket.sent[i]);
  await waitFor(() => socket.sent.length - base === 40);
  for (let i = base + 17; i < socket.sent.length; i++) socket.ack(socket.sent[i]);
  await Promise.all(pings);

  // history: written only when nothing else is in flight, and nothing after it until answered
  const before = client.ping();
  const history = client.history(1);
  const after = client.ping();
  assert.equal(socket.sent.at(-1).type, 'ping');
  assert.ok(!socket.sent.some((f) => f.type === 'history'), 'history waits for the ping in flight');
  socket.ack(socket.sent.at(-1));
  await before;
  await waitFor(() => socket.sent.at(-1).type === 'history');
  await new Promise((r) => setTimeout(r, 20));
  assert.equal(socket.sent.at(-1).type, 'history', 'the ping after it waits');
  socket.ack(socket.sent.at(-1), { events: [], epoch: 'e', last_seq: 0, more: false });
  await history;
  await waitFor(() => socket.sent.at(-1).type === 'ping');
  socket.ack(socket.sent.at(-1));
  await after;
  await client.close();
});

test('rate_limited: the client backs off and writes the command again (real host)', async (t) => {
  const host = await Host.start({ server: { commands_per_second: 20, command_burst: 5 } });
  t.after(() => host.stop());
  const answers = [];
  class Watch extends WebSocket {
    addEventListener(type, fn, ...rest) {
      if (type !== 'message') return super.addEventListener(type, fn, ...rest);
      return super.addEventListener(type, (ev) => {
        answers.push(JSON.parse(ev.data));
        fn(ev);
      }, ...rest);
    }
  }
  const client = makeClient(host, 'alice', { WebSocket: Watch });
  t.after(() => client.close());
  await client.connect();
  const started = Date.now();
  const results = await Promise.all(Array.from({ length: 30 }, () => client.ping()));
  assert.equal(results.length, 30, 'every command answered in the end');
  const limited = answers.filter((f) => f.type === 'error' && f.code === 'rate_limited').length;
  assert.ok(limited > 0, 'the host did refuse some');
  assert.ok(limited < 60, `backing off, not hammering: ${limited} refusals`);
  assert.ok(Date.now() - started < 10000);
});

test('a gap in live events is filled with subscribe; a transient recovered:false is retried', async () => {
  const positions = new MemoryPositionStore();
  positions.set(9, { epoch: 'e9', seq: 3 });
  const { script, client } = scriptedClient({ positions });
  const seqs = [];
  client.on('message.new', (e) => seqs.push(e.seq));
  await client.connect();
  const socket = script.sockets[0];
  const subscribes = () => socket.sent.filter((f) => f.type === 'subscribe');
  const msg = (seq) => ({ type: 'message.new', conversation_id: 9, seq, actor: 'a', at: 1, message: { id: 100 + seq, text: `m${seq}` } });

  // The resume after hello: the host says "unavailable" (not about the stream).
  await waitFor(() => subscribes().length === 1, { message: 'the first subscribe' });
  assert.deepEqual(subscribes()[0].positions, [{ conversation_id: 9, epoch: 'e9', seq: 3 }]);
  socket.push({ type: 'resume', conversation_id: 9, recovered: false, epoch: '', last_seq: 0, reason: 'unavailable' });
  socket.ack(subscribes()[0], { resumed: 1 });
  await waitFor(() => subscribes().length === 2, { timeout: 3000, message: 'the same position again' });
  assert.deepEqual(subscribes()[1].positions, [{ conversation_id: 9, epoch: 'e9', seq: 3 }]);
  socket.push({ type: 'resume', conversation_id: 9, recovered: true, epoch: 'e9', last_seq: 3 });
  socket.ack(subscribes()[1], { resumed: 1 });

  // Live: 4, then 6 (a gap): 6 waits, and the client resumes from 4.
  socket.push(msg(4));
  socket.push(msg(6));
  await waitFor(() => subscribes().length === 3, { message: 'a subscribe for the gap' });
  assert.deepEqual(subscribes()[2].positions, [{ conversation_id: 9, epoch: 'e9', seq: 4 }]);
  assert.deepEqual(seqs, [4]);
  socket.push(msg(5));
  socket.push(msg(6)); // the replay repeats what came live
  socket.push({ type: 'resume', conversation_id: 9, recovered: true, epoch: 'e9', last_seq: 6 });
  socket.ack(subscribes()[2], { resumed: 1 });
  socket.push(msg(6));
  socket.push(msg(7));
  assert.deepEqual(seqs, [4, 5, 6, 7], 'each once, in order');
  assert.deepEqual(positions.load()[9], { epoch: 'e9', seq: 7 });
  await client.close();
});
