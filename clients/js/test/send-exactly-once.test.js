// Required test 2: a send in flight while the connection drops is delivered
// once. The client writes it again with the same client_key after the
// reconnect; the app gets one ack, sees the message once, and history holds
// it once.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Host, makeClient, nextEvent, trace, waitFor, WebSocket } from '../test-support/host.js';

/**
 * A `ws` WebSocket that lets a test watch what the client writes and, for
 * one socket, stop what it reads (an answer lost on the way).
 */
function tappedWebSocket() {
  const tap = { sent: [], onSend: null, deafSocket: null, sockets: [] };
  class Tapped extends WebSocket {
    constructor(...args) {
      super(...args);
      tap.sockets.push(this);
    }
    send(data, ...rest) {
      super.send(data, ...rest);
      const frame = JSON.parse(data);
      tap.sent.push(frame);
      tap.onSend?.(frame, this);
    }
    addEventListener(type, fn, ...rest) {
      if (type !== 'message') return super.addEventListener(type, fn, ...rest);
      return super.addEventListener(type, (ev) => {
        if (tap.deafSocket !== this) fn(ev);
      }, ...rest);
    }
  }
  tap.WebSocket = Tapped;
  return tap;
}

async function setup(t) {
  const host = await Host.start();
  t.after(() => host.stop());
  const tap = tappedWebSocket();
  const alice = makeClient(host, 'alice', { WebSocket: tap.WebSocket });
  const bob = makeClient(host, 'bob');
  t.after(() => Promise.all([alice.close(), bob.close()]));
  // Nothing here needs a reload: every event comes as an event (each test
  // ends by checking it).
  const resyncs = [];
  for (const c of [alice, bob]) c.on('resync', (r) => resyncs.push(r));
  // On a failure, say what each client went through.
  const traces = [trace(alice, 'alice'), trace(bob, 'bob')];
  t.after(() => {
    if (!t.passed) t.diagnostic(`${traces.map((x) => x.dump()).join('\n')}\nhost log:\n${host.log.slice(-40).join('\n')}`);
  });
  // Both apps have their conversation list (the first sync) before the
  // conversation is made: from then on, every event of it is theirs.
  const synced = Promise.all([nextEvent(alice, 'synced'), nextEvent(bob, 'synced')]);
  await alice.connect();
  await bob.connect();
  await synced;
  const { conversation } = await alice.createConversation({ kind: 'group', name: 'once', members: ['bob'] });
  const aliceSaw = [];
  const bobSaw = [];
  alice.on('message.new', (e) => aliceSaw.push(e.message));
  bob.on('message.new', (e) => bobSaw.push(e.message));
  return { host, tap, alice, bob, id: conversation.id, aliceSaw, bobSaw, resyncs };
}

function countText(list, text) {
  return list.filter((m) => m.text === text).length;
}

async function historyCount(client, id, text) {
  const page = await client.history(id, { limit: 200 });
  return page.events.filter((e) => e.type === 'message.new' && e.message.text === text).length;
}

test('stored but not acknowledged: the retry returns the original (duplicate:true), shown once', async (t) => {
  const { host, tap, alice, bob, id, aliceSaw, bobSaw, resyncs } = await setup(t);
  let acks = 0;
  // From here on alice's socket reads nothing: neither the ack nor her own
  // message.new reach her, as when a connection dies right after the commit.
  tap.deafSocket = tap.sockets.at(-1);
  const sending = alice.send(id, 'committed, unacked');
  sending.then(() => acks++);
  await waitFor(() => countText(bobSaw, 'committed, unacked') === 1, { message: 'the host stored it (bob got it)' });

  await host.kill();
  await host.restart();
  const result = await sending;
  assert.equal(result.duplicate, true, 'the retry found the stored original');
  assert.equal(result.client_key, sending.clientKey);
  const writes = tap.sent.filter((f) => f.type === 'message.send' && f.client_key === sending.clientKey);
  assert.equal(writes.length, 2, 'written once per connection, with the same client_key');

  await alice.send(id, 'marker');
  await waitFor(() => countText(aliceSaw, 'marker') === 1 && countText(bobSaw, 'marker') === 1, { message: 'the marker' });
  assert.equal(countText(aliceSaw, 'committed, unacked'), 1, "alice's app saw it once (from the resume)");
  assert.equal(countText(bobSaw, 'committed, unacked'), 1, "bob's app saw it once");
  assert.equal(acks, 1);
  assert.equal(await historyCount(bob, id, 'committed, unacked'), 1, 'history holds it once');
  assert.deepEqual(resyncs, [], 'no conversation was reloaded');
});

test('SIGKILL right after send() was written: delivered once after the restart', async (t) => {
  const { host, tap, alice, bob, id, aliceSaw, bobSaw, resyncs } = await setup(t);
  let acks = 0;
  tap.onSend = (frame, socket) => {
    if (frame.type === 'message.send' && frame.text === 'in flight') {
      tap.onSend = null;
      // Whether the host stores it before it dies or not, no answer is
      // read from this connection: the send is in flight at the kill.
      tap.deafSocket = socket;
      process.kill(host.pid, 'SIGKILL');
    }
  };
  const sending = alice.send(id, 'in flight');
  sending.then(() => acks++);
  await host.exited;
  assert.equal(acks, 0, 'no ack without an answer');
  await host.restart();
  const result = await sending;
  assert.equal(result.message.text, 'in flight');
  assert.ok(tap.sent.filter((f) => f.type === 'message.send' && f.client_key === sending.clientKey).length >= 2);

  await alice.send(id, 'marker');
  await waitFor(() => countText(aliceSaw, 'marker') === 1 && countText(bobSaw, 'marker') === 1, { message: 'the marker' });
  assert.equal(countText(aliceSaw, 'in flight'), 1, "alice's app saw it once");
  assert.equal(countText(bobSaw, 'in flight'), 1, "bob's app saw it once");
  assert.equal(acks, 1, 'one ack');
  assert.equal(await historyCount(alice, id, 'in flight'), 1, 'history holds it once');
  assert.deepEqual(aliceSaw.map((m) => m.text), ['in flight', 'marker'], 'in order');
  assert.deepEqual(resyncs, [], 'no conversation was reloaded');
});

test('many sends in flight across a drop: each once, in order', async (t) => {
  const { host, tap, alice, bob, id, aliceSaw, bobSaw, resyncs } = await setup(t);
  const texts = Array.from({ length: 30 }, (_, i) => `burst ${i}`);
  // The kill comes the moment the first send is written: it is in flight.
  const written = new Promise((resolve) => {
    tap.onSend = (frame) => frame.type === 'message.send' && resolve();
  });
  const sends = texts.map((text) => alice.send(id, text));
  await written;
  await host.kill();
  tap.onSend = null;
  assert.ok(aliceSaw.length < texts.length, 'some sends were still unacknowledged at the kill');
  await host.restart();
  const results = await Promise.all(sends);
  assert.equal(new Set(results.map((r) => r.message.id)).size, 30, 'thirty distinct messages');
  await waitFor(() => countText(bobSaw, 'burst 29') === 1 && countText(aliceSaw, 'burst 29') === 1, { message: 'the last' });
  await alice.send(id, 'marker');
  await waitFor(() => countText(bobSaw, 'marker') === 1, { message: 'the marker' });
  assert.deepEqual(bobSaw.map((m) => m.text), [...texts, 'marker'], 'each once, in the order sent');
  for (const text of texts) {
    assert.equal(countText(bobSaw, text), 1, `${text} once for bob`);
    assert.equal(countText(aliceSaw, text), 1, `${text} once for alice`);
    assert.equal(await historyCount(bob, id, text), 1, `${text} once in history`);
  }
  assert.deepEqual(resyncs, [], 'no conversation was reloaded');
});
