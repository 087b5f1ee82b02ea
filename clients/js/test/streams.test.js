// Streams: each persistent event once, in seq order, whatever order and how
// often it arrives (pure, no host).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { isPersistent, MemoryPositionStore } from '../index.js';
import { Streams } from '../src/streams.js';

const ev = (seq, extra = {}) => ({ type: 'message.new', conversation_id: 1, seq, actor: 'a', at: 0, message: { id: seq * 10, text: `m${seq}` }, ...extra });

test('duplicates are dropped, gaps are buffered and reported, then filled in order', async () => {
  const store = new MemoryPositionStore();
  const s = new Streams(store);
  await s.load();
  s.learn(1, 'e1', 3); // a snapshot at seq 3
  assert.deepEqual(s.offer(ev(3)).deliver, [], 'at the snapshot: a duplicate');
  assert.deepEqual(s.offer(ev(4)).deliver.map((e) => e.seq), [4]);
  const gap = s.offer(ev(7));
  assert.deepEqual(gap, { deliver: [], gap: true });
  assert.deepEqual(s.offer(ev(6)).deliver, []);
  assert.deepEqual(s.offer(ev(5)).deliver.map((e) => e.seq), [5, 6, 7], 'the gap filled: all three, in order');
  assert.deepEqual(s.offer(ev(6)).deliver, []);
  s.saved(1);
  assert.deepEqual(store.load()[1], { epoch: 'e1', seq: 7 });
});

test('gaps during a resume are expected, not reported', () => {
  const s = new Streams(new MemoryPositionStore());
  s.learn(1, 'e', 1);
  s.setResuming(1, true);
  assert.equal(s.offer(ev(5)).gap, false);
  s.resumed(1, 'e');
  assert.equal(s.hasGap(1), true);
});

test('reset drops what the reload covered and delivers what follows it', () => {
  const s = new Streams(new MemoryPositionStore());
  assert.equal(s.offer(ev(1)).deliver.length, 1, 'an unknown conversation starts at its first event');
  s.setResuming(1, true);
  s.offer(ev(9));
  s.offer(ev(11));
  assert.deepEqual(s.reset(1, 'e2', 8).map((e) => e.seq), [9]);
  assert.deepEqual(s.position(1), { epoch: 'e2', seq: 9 });
});

test('a reload holds live events whatever their seq (a stream that went back: a restored database)', () => {
  const s = new Streams(new MemoryPositionStore());
  for (let seq = 1; seq <= 5; seq++) s.offer(ev(seq, { message: { id: seq } }));
  s.reloading(1); // the host said: position is ahead of the stream (it is at 2 now)
  assert.equal(s.offer(ev(3, { message: { id: 3 } })).deliver.length, 0, 'held, not taken for a duplicate');
  assert.deepEqual(s.reset(1, 'e', 2).map((e) => e.seq), [3], 'delivered after the reload, though an id 3 was seen before');
  assert.deepEqual(s.position(1), { epoch: 'e', seq: 3 });
  assert.equal(s.offer(ev(4, { message: { id: 4 } })).deliver.length, 1, 'and live again');
});

test('a failed reload keeps the old position', () => {
  const s = new Streams(new MemoryPositionStore());
  s.offer(ev(1));
  s.reloading(1);
  s.offer(ev(2));
  assert.deepEqual(s.reloadFailed(1).map((e) => e.seq), [2], 'what was held right after it is delivered');
  assert.equal(s.isResuming(1), false);
  assert.deepEqual(s.offer(ev(3)).deliver.map((e) => e.seq), [3]);
});

test('ephemeral events are not stream positions', () => {
  assert.equal(isPersistent({ type: 'receipt.update', conversation_id: 1, seq: 4, user_id: 'b' }), false);
  assert.equal(isPersistent({ type: 'typing.start', conversation_id: 1, user_id: 'b' }), false);
  assert.equal(isPersistent({ type: 'pin.add', conversation_id: 1, seq: 4, actor: 'a', at: 1 }), true);
});

test('right after a conversation list, positions without an epoch are not resumed', () => {
  const s = new Streams(new MemoryPositionStore());
  assert.equal(s.hasPositions(), false);
  s.learn(1, 'e1', 4);
  s.offer(ev(1, { conversation_id: 2 })); // appeared after the list: its events came live
  s.learn(3, null, undefined); // known, no position yet
  assert.equal(s.knows(3), true);
  assert.equal(s.knows(4), false);
  assert.equal(s.hasPositions(), true);
  assert.deepEqual(s.subscribable().map((p) => [p.conversation_id, p.epoch, p.seq]), [[1, 'e1', 4], [2, '', 1]]);
  assert.deepEqual(s.subscribable({ epochKnownOnly: true }).map((p) => p.conversation_id), [1]);
});
