// Required test 4: the recovered:false path. The client falls further behind
// than the host's resume window ([chat] resume_window, 5 here), reconnects,
// reloads through history and tells the app (`resync`); the app, which
// replaces its view with the reload, ends with the right messages.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MemoryPositionStore } from '../index.js';
import { Gate, Host, makeClient, mintToken, nextEvent, waitFor, WebSocket } from '../test-support/host.js';

/** A chat view the way an app would keep it: messages by seq, replaced on resync. */
function chatView(client, id) {
  const view = { messages: [], resyncs: [] };
  client.on('message.new', (e) => {
    if (e.conversation_id === id) view.messages.push(e.message.text);
  });
  client.on('resync', (r) => {
    if (r.conversation_id !== id) return;
    view.resyncs.push(r);
    view.messages = r.events.filter((e) => e.type === 'message.new' && !e.message.deleted).map((e) => e.message.text);
  });
  return view;
}

test('recovered:false: reload through history, `resync` to the app, right messages after', async (t) => {
  const host = await Host.start({ chat: { resume_window: 5 } });
  t.after(() => host.stop());

  const alice = makeClient(host, 'alice');
  const gate = new Gate();
  const sentByBob = [];
  class Watch extends WebSocket {
    send(data, ...rest) {
      sentByBob.push(JSON.parse(data));
      super.send(data, ...rest);
    }
  }
  const bob = makeClient(host, 'bob', {
    WebSocket: Watch,
    resyncLimit: 100,
    getToken: async ({ reason }) => {
      if (reason !== 'connect') await gate.promise;
      return mintToken('bob');
    },
  });
  t.after(() => Promise.all([alice.close(), bob.close()]));

  await alice.connect();
  await bob.connect();
  const { conversation } = await alice.createConversation({ kind: 'group', name: 'resync', members: ['bob'] });
  const id = conversation.id;
  const view = chatView(bob, id);
  const expected = [];
  for (let i = 1; i <= 3; i++) {
    expected.push(`live ${i}`);
    await alice.send(id, `live ${i}`);
  }
  await waitFor(() => view.messages.length === 3, { message: 'bob has the first three' });

  await host.kill();
  await waitFor(() => bob.state === 'reconnecting', { message: 'bob away' });
  await host.restart();
  for (let i = 1; i <= 12; i++) {
    expected.push(`missed ${i}`);
    await alice.send(id, `missed ${i}`);
  }
  const edited = await alice.send(id, 'to be edited');
  await alice.editMessage(edited.message.id, 'edited while bob was away');
  expected.push('edited while bob was away');

  const resume = nextEvent(bob, 'resume', { pred: (f) => f.conversation_id === id });
  const resync = nextEvent(bob, 'resync', { pred: (r) => r.conversation_id === id });
  gate.open();
  const frame = await resume;
  assert.equal(frame.recovered, false);
  assert.match(frame.reason, /resume window/);
  const r = await resync;
  assert.equal(r.removed, false);
  assert.match(r.reason, /resume window/);
  assert.equal(r.epoch, conversation.epoch);
  assert.equal(r.last_seq, bob.position(id).seq);
  assert.ok(
    sentByBob.some((f) => f.type === 'history' && f.conversation_id === id),
    'the client reloaded through history',
  );
  assert.deepEqual(view.messages, expected, 'the reload holds every message, edits applied');

  // Live events go on after the reload, once each.
  await alice.send(id, 'after the reload');
  expected.push('after the reload');
  await waitFor(() => view.messages.at(-1) === 'after the reload', { message: 'live after resync' });
  assert.deepEqual(view.messages, expected);
  assert.equal(view.resyncs.length, 1);

  // A later reconnect within the window resumes exactly again (no resync).
  const resumedAgain = nextEvent(bob, 'resume', { pred: (f) => f.conversation_id === id });
  await host.kill();
  await host.restart();
  await alice.send(id, 'one more');
  expected.push('one more');
  assert.equal((await resumedAgain).recovered, true);
  await waitFor(() => view.messages.at(-1) === 'one more', { message: 'resumed' });
  assert.deepEqual(view.messages, expected);
  assert.equal(view.resyncs.length, 1);
});

test('a position from another epoch (or none) resyncs too; a lost membership says removed', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());
  const alice = makeClient(host, 'alice');
  t.after(() => alice.close());
  await alice.connect();
  const { conversation } = await alice.createConversation({ kind: 'group', name: 'epochs', members: ['bob'] });
  await alice.send(conversation.id, 'hello');
  const other = await alice.createConversation({ kind: 'group', name: 'not bob' });

  // Bob's store says: a wrong epoch for the first, a conversation he is not in.
  const store = new MemoryPositionStore();
  store.set(conversation.id, { epoch: 'ffffffffffffffff', seq: 1 });
  store.set(other.conversation.id, { epoch: other.conversation.epoch, seq: 1 });
  const bob = makeClient(host, 'bob', { positions: store });
  t.after(() => bob.close());
  const resyncs = [];
  bob.on('resync', (r) => resyncs.push(r));
  await bob.connect();
  await waitFor(() => resyncs.length === 2, { message: 'two resyncs' });
  const byId = Object.fromEntries(resyncs.map((r) => [r.conversation_id, r]));
  assert.equal(byId[conversation.id].reason, 'epoch changed');
  assert.deepEqual(byId[conversation.id].events.filter((e) => e.type === 'message.new').map((e) => e.message.text), ['hello']);
  assert.equal(byId[other.conversation.id].removed, true);
  assert.equal(bob.position(other.conversation.id), undefined);
  assert.equal(store.load()[conversation.id].epoch, conversation.epoch, 'the store holds the new epoch');
});
