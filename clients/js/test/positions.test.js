// Position stores: memory and localStorage. A new client (a page reload)
// with a persistent store resumes exactly where the last one stopped.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LocalStoragePositionStore, MemoryPositionStore } from '../index.js';
import { Host, makeClient, nextEvent, waitFor } from '../test-support/host.js';

/** What a browser's localStorage offers, in memory. */
class FakeLocalStorage {
  constructor() {
    this.items = new Map();
  }
  getItem(k) {
    return this.items.has(k) ? this.items.get(k) : null;
  }
  setItem(k, v) {
    this.items.set(k, String(v));
  }
  removeItem(k) {
    this.items.delete(k);
  }
}

test('LocalStoragePositionStore keeps positions as JSON and survives junk', () => {
  const storage = new FakeLocalStorage();
  const store = new LocalStoragePositionStore({ storage, key: 'sb.alice' });
  assert.deepEqual(store.load(), {});
  store.set(12, { epoch: 'abc', seq: 44 });
  store.set(13, { epoch: null, seq: 2 });
  store.delete(13);
  assert.deepEqual(JSON.parse(storage.getItem('sb.alice')), { 12: { epoch: 'abc', seq: 44 } });
  assert.deepEqual(new LocalStoragePositionStore({ storage, key: 'sb.alice' }).load(), { 12: { epoch: 'abc', seq: 44 } });
  storage.setItem('sb.bad', '{not json');
  assert.deepEqual(new LocalStoragePositionStore({ storage, key: 'sb.bad' }).load(), {});
  store.clear();
  assert.equal(storage.getItem('sb.alice'), null);
  assert.throws(() => new LocalStoragePositionStore({ storage: undefined }), TypeError);
});

test('MemoryPositionStore copies in and out', () => {
  const store = new MemoryPositionStore();
  const p = { epoch: 'e', seq: 1 };
  store.set(1, p);
  p.seq = 99;
  assert.deepEqual(store.load(), { 1: { epoch: 'e', seq: 1 } });
});

test('a new client with the same localStorage resumes exactly (page reload)', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());
  const alice = makeClient(host, 'alice');
  t.after(() => alice.close());
  await alice.connect();
  const { conversation } = await alice.createConversation({ kind: 'group', name: 'reload', members: ['bob'] });
  const id = conversation.id;

  const storage = new FakeLocalStorage();
  const page1 = makeClient(host, 'bob', { positions: new LocalStoragePositionStore({ storage, key: 'sb.bob' }) });
  const seen1 = [];
  page1.on('message.new', (e) => seen1.push(e.message.text));
  await page1.connect();
  await alice.send(id, 'one');
  await waitFor(() => seen1.length === 1);
  await page1.close();
  assert.equal(JSON.parse(storage.getItem('sb.bob'))[id].seq, 2, 'the store holds the last position');

  await alice.send(id, 'two');
  await alice.send(id, 'three');

  const page2 = makeClient(host, 'bob', { positions: new LocalStoragePositionStore({ storage, key: 'sb.bob' }) });
  t.after(() => page2.close());
  const seen2 = [];
  page2.on('message.new', (e) => seen2.push(e.message.text));
  const resume = nextEvent(page2, 'resume');
  await page2.connect();
  assert.equal((await resume).recovered, true);
  await alice.send(id, 'four');
  await waitFor(() => seen2.length === 3);
  assert.deepEqual(seen2, ['two', 'three', 'four']);
  assert.equal(JSON.parse(storage.getItem('sb.bob'))[id].seq, 5);
});
