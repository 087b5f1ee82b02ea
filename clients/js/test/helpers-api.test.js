// The helpers against the real host: conversations, members, history paging,
// reactions, pins, receipts and unread, presence, typing.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Host, makeClient, nextEvent, texts, waitFor } from '../test-support/host.js';

test('conversations and members', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());
  const alice = makeClient(host, 'alice');
  const bob = makeClient(host, 'bob');
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);

  const bobJoins = [];
  bob.on('member.join', (e) => bobJoins.push(e));
  const direct = await alice.createConversation({ kind: 'direct', members: ['bob'] });
  assert.equal(direct.created, true);
  assert.equal((await alice.createConversation({ kind: 'direct', members: ['bob'] })).created, false);
  const group = (await alice.createConversation({ kind: 'group', name: 'team' })).conversation;
  const channel = (await alice.createConversation({ kind: 'channel', name: 'news' })).conversation;

  const joined = await bob.joinConversation(channel.id);
  assert.equal(joined.changed, true);
  await alice.addMember(group.id, 'bob');
  await waitFor(() => bobJoins.some((e) => e.conversation_id === group.id && e.user_id === 'bob'), { message: 'bob added' });
  const role = await alice.setMemberRole(group.id, 'bob', 'admin');
  assert.equal(role.member.role, 'admin');
  const got = await bob.getConversation(group.id);
  assert.deepEqual(got.members.map((m) => `${m.user_id}:${m.role}`).sort(), ['alice:owner', 'bob:admin']);

  const listed = await bob.listAllConversations();
  assert.deepEqual(listed.map((c) => c.id).sort((a, b) => a - b), [direct.conversation.id, group.id, channel.id].sort((a, b) => a - b));
  const page = await bob.listConversations({ limit: 1 });
  assert.equal(page.conversations.length, 1);

  assert.deepEqual(await bob.leaveConversation(channel.id), { left: true });
  await assert.rejects(bob.leaveConversation(direct.conversation.id), (e) => e.code === 'forbidden');
  const removed = await alice.setMemberRole(group.id, 'bob', 'member').then(() => alice.removeMember(group.id, 'bob'));
  assert.ok(removed.removed);
  await waitFor(() => bob.position(group.id) === undefined, { message: 'bob forgets a conversation he left' });
});

test('history paging, edit and delete', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());
  const alice = makeClient(host, 'alice');
  t.after(() => alice.close());
  await alice.connect();
  const { conversation } = await alice.createConversation({ kind: 'group', name: 'pages' });
  const id = conversation.id;
  const all = [];
  for (let i = 0; i < 25; i++) {
    all.push(`m${i}`);
    await alice.send(id, `m${i}`);
  }
  const pages = [];
  for await (const p of alice.historyPages(id, { limit: 10 })) pages.push(p);
  assert.equal(pages.length, 3);
  assert.deepEqual(pages.reverse().flatMap((p) => texts(p.events)), all);
  const newest = await alice.history(id, { limit: 5 });
  assert.equal(newest.more, true);
  assert.deepEqual(texts(newest.events), all.slice(-5));
  const after = await alice.history(id, { after: newest.last_seq - 2 });
  assert.equal(after.events.length, 2);

  const sent = await alice.send(id, 'typo', { clientKey: 'my-own-key-1' });
  assert.equal(sent.client_key, 'my-own-key-1');
  const edits = nextEvent(alice, 'message.edit');
  assert.equal((await alice.editMessage(sent.message.id, 'fixed')).message.text, 'fixed');
  assert.equal((await edits).message.text, 'fixed');
  const deleted = await alice.deleteMessage(sent.message.id);
  assert.equal(deleted.message.deleted, true);
  const again = await alice.send(id, 'typo', { clientKey: 'my-own-key-1' });
  assert.equal(again.duplicate, true, 'the same client key is the same message');
  const reply = await alice.send(id, 'a reply', { replyTo: again.message.id - 1 });
  assert.equal(reply.message.reply_to, again.message.id - 1);
});

test('reactions, pins, receipts and unread, presence, typing', async (t) => {
  const host = await Host.start({ typing: { coalesce_ms: 50, timeout_ms: 2000 } });
  t.after(() => host.stop());
  const alice = makeClient(host, 'alice', { typing: { renewMs: 200, idleMs: 400 } });
  const bob = makeClient(host, 'bob');
  t.after(() => Promise.all([alice.close(), bob.close()]));
  await Promise.all([alice.connect(), bob.connect()]);
  const { conversation } = await alice.createConversation({ kind: 'group', name: 'features', members: ['bob'] });
  const id = conversation.id;
  const bobEvents = [];
  bob.on('event', (e) => bobEvents.push(e));
  const m = (await alice.send(id, 'react to me')).message;

  const reacted = await bob.react(m.id, '🎉');
  assert.equal(reacted.changed, true);
  assert.equal((await bob.react(m.id, '🎉')).changed, false);
  await waitFor(() => bobEvents.some((e) => e.type === 'reaction.add'));
  assert.equal((await bob.unreact(m.id, '🎉')).changed, true);

  const pinned = await alice.pin(m.id);
  assert.equal(pinned.changed, true);
  assert.deepEqual((await bob.pins(id)).pins.map((p) => p.message_id), [m.id]);
  await assert.rejects(bob.pin(m.id), (e) => e.code === 'forbidden', 'bob is neither admin nor author');
  assert.equal((await alice.unpin(m.id)).changed, true);

  const unread = await bob.unread();
  assert.deepEqual(unread.conversations.find((c) => c.conversation_id === id)?.unread, 1);
  const read = await bob.markRead(id, bob.position(id).seq);
  assert.equal(read.unread, 0);

  const presence = await bob.presence(id);
  assert.deepEqual(presence.online.sort(), ['alice', 'bob']);

  // Typing: keystrokes start, renew while they come, and stop by themselves.
  alice.typing.keystroke(id);
  const start = await waitFor(() => bobEvents.find((e) => e.type === 'typing.start' && e.user_id === 'alice'), { message: 'typing.start' });
  assert.equal(start.conversation_id, id);
  assert.equal(alice.typing.isTyping(id), true);
  await waitFor(() => bobEvents.some((e) => e.type === 'typing.stop' && e.user_id === 'alice'), { message: 'typing.stop after idle' });
  assert.equal(alice.typing.isTyping(id), false);
  // start() renews until stop(); a send stops it too.
  const starts = () => bobEvents.filter((e) => e.type === 'typing.start').length;
  const before = starts();
  alice.typing.start(id);
  await waitFor(() => starts() >= before + 3, { message: 'renewed typing.start' });
  await alice.send(id, 'done typing');
  assert.equal(alice.typing.isTyping(id), false);
  await waitFor(() => bobEvents.filter((e) => e.type === 'typing.stop').length === 2, { message: 'typing.stop on send' });
});
