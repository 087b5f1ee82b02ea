// Required test 1: reconnect and exact resume after the host is killed with
// SIGKILL and restarted on the same port with the same data dir. Messages
// another user sent while the client was away arrive once each, in order.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Backoff } from '../index.js';
import { Gate, Host, makeClient, mintToken, nextEvent, texts, waitFor } from '../test-support/host.js';

test('reconnect + exact resume after SIGKILL and restart', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());

  const alice = makeClient(host, 'alice');
  // Bob's token callback keeps him away (after the first connection) until
  // the gate opens: the messages below are surely sent while he is away.
  const gate = new Gate();
  const tokenReasons = [];
  const backoff = new Backoff({ initialMs: 50, maxMs: 400 });
  const bob = makeClient(host, 'bob', {
    backoff,
    stableAfterMs: 300,
    getToken: async ({ reason }) => {
      tokenReasons.push(reason);
      if (reason !== 'connect') await gate.promise;
      return mintToken('bob');
    },
  });
  t.after(() => Promise.all([alice.close(), bob.close()]));

  const seen = []; // every persistent event bob's app got: [conversation, seq, type, text]
  const states = [];
  const resumes = [];
  const resyncs = [];
  bob.on('event', (e) => {
    if (e.seq !== undefined && e.type !== 'receipt.update') seen.push(e);
  });
  bob.on('state', (s) => states.push(s));
  bob.on('resume', (f) => resumes.push(f));
  bob.on('resync', (r) => resyncs.push(r));

  await alice.connect();
  await bob.connect();
  const { conversation } = await alice.createConversation({ kind: 'group', name: 'resume', members: ['bob'] });
  const id = conversation.id;
  const first = await alice.send(id, 'before 1');
  await alice.send(id, 'before 2');
  await waitFor(() => seen.filter((e) => e.type === 'message.new').length === 2, { message: 'bob sees the first two' });

  await host.kill();
  await waitFor(() => bob.state === 'reconnecting' && tokenReasons.length === 2, { message: 'bob waiting to reconnect' });
  await host.restart();
  await waitFor(() => alice.state === 'open', { message: 'alice back' });

  const away = [];
  for (let i = 1; i <= 20; i++) away.push(`away ${i}`);
  for (const text of away) await alice.send(id, text);
  await alice.react(first.message.id, '👍');
  assert.equal(bob.state, 'reconnecting', 'bob was away the whole time');

  const resumed = nextEvent(bob, 'resume', { pred: (f) => f.conversation_id === id });
  gate.open();
  const frame = await resumed;
  assert.equal(frame.recovered, true, JSON.stringify(frame));

  // A marker sent after the resume: once bob has it, anything duplicated or
  // missing before it would show.
  await alice.send(id, 'after resume');
  await waitFor(() => seen.some((e) => e.message?.text === 'after resume'), { message: 'the marker' });

  const msgs = seen.filter((e) => e.conversation_id === id && e.type === 'message.new').map((e) => e.message.text);
  assert.deepEqual(msgs, ['before 1', 'before 2', ...away, 'after resume']);
  const seqs = seen.filter((e) => e.conversation_id === id).map((e) => e.seq);
  for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1] + 1, `no gap, no duplicate: ${seqs.join(',')}`);
  assert.ok(seen.some((e) => e.type === 'reaction.add' && e.emoji === '👍'), 'the reaction made while away arrives too');
  assert.equal(resyncs.length, 0, 'nothing to reload');
  assert.deepEqual(tokenReasons, ['connect', 'reconnect']);
  assert.ok(states.includes('reconnecting') && states.at(-1) === 'open', states.join(' > '));
  assert.equal(bob.position(id).seq, seqs.at(-1));

  // A connection that stayed up resets the backoff.
  assert.ok(backoff.attempts > 0);
  await waitFor(() => backoff.attempts === 0, { message: 'backoff reset after a stable connection' });
});

/** Bob, kept away (after his first connection) until `gate` opens. */
function awayClient(host, gate) {
  return makeClient(host, 'bob', {
    getToken: async ({ reason }) => {
      if (reason !== 'connect') await gate.promise;
      return mintToken('bob');
    },
  });
}

test('a conversation you were added to while away arrives from its first event', async (t) => {
  const host = await Host.start({ chat: { resume_window: 10 } });
  t.after(() => host.stop());
  const alice = makeClient(host, 'alice');
  const gate = new Gate();
  const bob = awayClient(host, gate);
  t.after(() => Promise.all([alice.close(), bob.close()]));
  const seen = [];
  const resyncs = [];
  const synced = [];
  bob.on('event', (e) => Number.isInteger(e.seq) && seen.push(e));
  bob.on('resync', (r) => resyncs.push(r));
  bob.on('synced', (s) => synced.push(s));
  await alice.connect();
  await bob.connect();
  await waitFor(() => synced.length === 1, { message: "bob's first sync" });

  await host.kill();
  await host.restart();
  await waitFor(() => alice.state === 'open', { message: 'alice back' });
  const small = (await alice.createConversation({ kind: 'group', name: 'small', members: ['bob'] })).conversation;
  for (const text of ['one', 'two', 'three']) await alice.send(small.id, text);
  // Past the resume window: reloaded through history, and said so.
  const big = (await alice.createConversation({ kind: 'group', name: 'big', members: ['bob'] })).conversation;
  for (let i = 1; i <= 12; i++) await alice.send(big.id, `big ${i}`);
  assert.notEqual(bob.state, 'open', 'bob was away the whole time');

  gate.open();
  await waitFor(() => synced.length === 2, { message: "bob's second sync" });
  assert.deepEqual(synced[1].added.sort(), [small.id, big.id].sort());
  await waitFor(() => seen.some((e) => e.message?.text === 'three'), { message: 'the small conversation' });
  await waitFor(() => resyncs.length === 1, { message: 'the big one reloaded' });

  const inSmall = seen.filter((e) => e.conversation_id === small.id);
  assert.deepEqual(inSmall.map((e) => e.seq), [1, 2, 3, 4], 'from its first event, each once');
  assert.deepEqual(texts(inSmall), ['one', 'two', 'three']);
  assert.equal(inSmall[0].type, 'conversation.create');
  assert.equal(resyncs[0].conversation_id, big.id);
  assert.equal(resyncs[0].reason, 'gap larger than the resume window');
  assert.equal(resyncs[0].last_seq, 13);
  assert.deepEqual(seen.filter((e) => e.conversation_id === big.id), [], 'the reload is in the resync, not in events');
});
