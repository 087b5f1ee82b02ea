/**
 * The Switchboard browser chat: sign in, conversations, messages with
 * replies, edits, deletes, reactions and pins, typing, read receipts and
 * unread counts, presence, and a visible connection state — all through the
 * JavaScript client (./client/index.js). No framework, no build step.
 * @module
 */

import { SwitchboardClient, isPersistent } from './client/index.js';
import { devTokensAvailable, devTokenSource, fetchDevToken, tokenSubject, wsUrl } from './connection.js';
import { ChatModel } from './model.js';
import { renderConversations, renderHeader, renderPins, renderState, renderTimeline, renderTyping } from './view.js';

/** Events per history page. */
const PAGE_SIZE = 40;
const SESSION_KEY = 'switchboard.chat.session';

// A page reload would show here: tests compare it before and after.
window.__loadedAt ??= Date.now() + Math.random();
/** For tests and the console: the client, the model, and a log of connection events. */
const debug = (window.__chat = { client: null, model: null, log: [] });

const $ = (id) => document.getElementById(id);
const refs = {
  state: $('state'),
  stateText: $('state-text'),
  retry: $('retry'),
  me: $('me'),
  meName: $('me-name'),
  signout: $('signout'),
  login: $('login'),
  loginDev: $('login-dev'),
  loginName: $('login-name'),
  loginToken: $('login-token'),
  loginTokenBox: $('login-token-box'),
  loginTokenInput: $('login-token-input'),
  loginError: $('login-error'),
  app: $('app'),
  conversations: $('conversations'),
  newConversation: $('new-conversation'),
  newKind: $('new-kind'),
  newName: $('new-name'),
  newMembers: $('new-members'),
  empty: $('empty'),
  convHeader: $('conv-header'),
  convTitle: $('conv-title'),
  members: $('members'),
  pinsToggle: $('pins-toggle'),
  pinsCount: $('pins-count'),
  pins: $('pins'),
  pinsList: $('pins-list'),
  messages: $('messages'),
  older: $('older'),
  timeline: $('timeline'),
  typing: $('typing'),
  composer: $('composer'),
  reply: $('reply'),
  replyText: $('reply-text'),
  replyCancel: $('reply-cancel'),
  text: $('text'),
  toast: $('toast'),
};

/** @type {SwitchboardClient|null} */
let client = null;
/** @type {ChatModel|null} */
let model = null;
const ui = {
  selected: null,
  editing: null,
  editDraft: null,
  replyTo: null,
  pinsOpen: false,
  retry: null,
  stickToBottom: true,
};
/** Sends waiting for their ack: {clientKey, conversationId, text}. */
let pending = [];

// ------------------------------------------------------------ rendering

let renderQueued = false;
function render() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    renderNow();
  });
}

function renderNow() {
  renderState(refs, client, ui);
  if (!model) return;
  refs.app.dataset.connected = String(client?.state === 'open'); // presence is stale otherwise
  renderConversations(refs.conversations, model, ui);
  const c = ui.selected != null ? model.get(ui.selected) : null;
  refs.empty.hidden = !!c;
  refs.convHeader.hidden = refs.messages.hidden = refs.composer.hidden = !c;
  if (!c) {
    refs.pins.hidden = true;
    renderTyping(refs.typing, model, null);
    return;
  }
  renderHeader(refs, model, c);
  renderPins(refs, model, c, ui.pinsOpen);
  // A reader at the bottom stays there as rows come; otherwise the first row
  // on screen stays put (older rows added above do not move what is read).
  const box = refs.messages;
  const atBottom = ui.stickToBottom || box.scrollHeight - box.scrollTop - box.clientHeight < 40;
  const anchor = atBottom ? null : [...refs.timeline.children].find((el) => el.offsetTop + el.offsetHeight > box.scrollTop);
  const anchorKey = anchor?.dataset.key;
  const anchorOffset = anchor ? anchor.offsetTop - box.scrollTop : 0;
  renderTimeline(refs.timeline, model, c, ui, pending);
  refs.older.hidden = !c.loaded || !c.more;
  refs.older.disabled = c.loadingOlder;
  refs.older.textContent = c.loadingOlder ? 'Loading…' : 'Load older messages';
  if (!c.loaded) refs.timeline.replaceChildren(Object.assign(document.createElement('li'), { className: 'system', textContent: 'Loading…' }));
  if (atBottom) box.scrollTop = box.scrollHeight;
  else {
    const again = anchorKey && [...refs.timeline.children].find((el) => el.dataset.key === anchorKey);
    if (again) box.scrollTop = again.offsetTop - anchorOffset;
  }
  ui.stickToBottom = false;
  renderTyping(refs.typing, model, c);
  const replied = ui.replyTo != null ? c.messages.get(ui.replyTo) : null;
  refs.reply.hidden = !replied;
  if (replied) refs.replyText.textContent = `Replying to ${replied.author}: ${replied.text.slice(0, 80)}`;
}

let toastTimer = null;
function toast(text) {
  refs.toast.textContent = text;
  refs.toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (refs.toast.hidden = true), 5000);
}

function fail(what) {
  return (err) => toast(`${what}: ${err?.message ?? err}`);
}

// --------------------------------------------------------------- sign in

async function boot() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const hashToken = hash.get('token');
  if (hashToken) {
    history.replaceState(null, '', location.pathname + location.search); // keep the token out of the address bar
    if (tokenSubject(hashToken)) return start({ mode: 'token', token: hashToken });
    return showLogin('The #token= in the address is not a JWT.');
  }
  let saved = null;
  try {
    saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? 'null');
  } catch {
    saved = null;
  }
  if (saved?.mode === 'dev' || saved?.mode === 'token') return start(saved);
  showLogin();
}

async function showLogin(message = '') {
  refs.app.hidden = true;
  refs.me.hidden = true;
  refs.login.hidden = false;
  refs.loginError.textContent = message;
  renderState(refs, null, ui);
  const dev = await devTokensAvailable();
  refs.loginDev.hidden = !dev;
  refs.loginTokenBox.open = !dev;
  (dev ? refs.loginName : refs.loginTokenInput).focus();
}

refs.loginDev.addEventListener('submit', async (e) => {
  e.preventDefault();
  const user = refs.loginName.value.trim();
  if (!user) return;
  refs.loginError.textContent = '';
  try {
    await fetchDevToken(user); // refused here rather than on every reconnect
  } catch (err) {
    refs.loginError.textContent = `No token for ${user}: ${err.message}`;
    return;
  }
  start({ mode: 'dev', user });
});

refs.loginToken.addEventListener('submit', (e) => {
  e.preventDefault();
  const token = refs.loginTokenInput.value.trim();
  if (!tokenSubject(token)) {
    refs.loginError.textContent = 'That does not look like a JWT (three dot-separated parts with a `sub`).';
    return;
  }
  start({ mode: 'token', token });
});

refs.signout.addEventListener('click', async () => {
  sessionStorage.removeItem(SESSION_KEY);
  const c = client;
  client = null;
  model = null;
  debug.client = debug.model = null;
  ui.selected = null;
  pending = [];
  await c?.close();
  showLogin();
});

function start(session) {
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  ui.retry = null;
  const user = session.mode === 'dev' ? session.user : tokenSubject(session.token);
  refs.login.hidden = true;
  refs.app.hidden = false;
  refs.me.hidden = false;
  refs.meName.textContent = user ?? '?';
  model = new ChatModel(user);
  client = new SwitchboardClient({
    url: wsUrl(),
    getToken: session.mode === 'dev' ? devTokenSource(session.user) : () => session.token,
  });
  debug.client = client;
  debug.model = model;
  wire(client);
  client.connect().catch(() => {}); // it keeps trying; the state shows how it goes
  render();
}

function log(type, detail) {
  debug.log.push({ type, detail, at: Date.now() });
  if (debug.log.length > 500) debug.log.shift();
}

// ---------------------------------------------------------- client events

function wire(cl) {
  const mine = (fn) => (...args) => {
    if (client === cl) fn(...args);
  };
  cl.on('state', mine((state) => {
    if (state === 'open' || state === 'offline') ui.retry = null;
    log('state', state);
    render();
  }));
  cl.on('retry', mine((info) => {
    ui.retry = info;
    render();
  }));
  cl.on('open', mine((hello) => {
    log('open', { session: hello.session_id });
    if (hello.user_id !== model.me) {
      model.me = hello.user_id;
      refs.meName.textContent = hello.user_id;
    }
  }));
  cl.on('disconnect', mine((d) => {
    log('disconnect', d);
    model.forgetEphemeral();
    render();
  }));
  cl.on('synced', mine(onSynced));
  cl.on('resume', mine((f) => log('resume', { conversation: f.conversation_id, recovered: f.recovered, last_seq: f.last_seq })));
  cl.on('resync', mine(onResync));
  cl.on('error', mine((err) => {
    console.warn('switchboard:', err);
    if (err.code === 'token') toast(`Cannot get a token: ${err.message}`);
  }));
  cl.on('event', mine((ev) => (isPersistent(ev) ? onPersistent(ev) : onEphemeral(ev))));
}

async function onSynced({ conversations }) {
  log('synced', { conversations: conversations?.length });
  if (conversations) {
    const ids = new Set(conversations.map((c) => c.id));
    for (const c of conversations) model.upsertConversation(c);
    for (const c of model.list()) if (!ids.has(c.id) && !c.loading) dropConversation(c.id);
  }
  refreshUnread();
  // Presence changed unseen while we were away (membership changes came as events).
  for (const c of model.list().slice(0, 50)) (c.membersLoaded ? loadPresence : loadDetails)(c.id);
  if (ui.selected == null && model.list().length) select(model.list()[0].id);
  render();
}

function onResync({ conversation_id: id, removed, events, last_seq: lastSeq, more, reason }) {
  log('resync', { conversation: id, removed, reason });
  if (removed) return dropConversation(id);
  model.reset(id, events, lastSeq, more);
  if (id === ui.selected) {
    ui.stickToBottom = true;
    loadPins(id);
  }
  render();
}

function onPersistent(ev) {
  const id = ev.conversation_id;
  const known = model.get(id);
  model.applyEvent(ev);
  const c = model.get(id);
  switch (ev.type) {
    case 'member.join':
      if (known) loadPresence(id);
      break;
    case 'member.leave':
      if (ev.user_id === model.me) return dropConversation(id);
      break;
    case 'message.new':
      if (ev.message.author === model.me) {
        // Our own message may come before its ack: the "sending…" row goes now.
        const i = pending.findIndex((p) => p.conversationId === id && p.text === ev.message.text);
        if (i >= 0) pending.splice(i, 1);
      } else if (id === ui.selected) {
        markReadSoon(id);
      }
      break;
    case 'pin.add':
    case 'pin.remove':
      if (c.pinsLoaded && !c.messages.has(ev.message_id)) loadPins(id);
      break;
    default:
      break;
  }
  if (!known) {
    loadDetails(id);
    if (ui.selected == null) select(id); // the first conversation opens by itself
  }
  render();
}

function onEphemeral(ev) {
  const c = model.get(ev.conversation_id);
  if (!c) return;
  switch (ev.type) {
    case 'presence.update':
      if (ev.status === 'online') c.online.add(ev.user_id);
      else c.online.delete(ev.user_id);
      break;
    case 'typing.start':
    case 'typing.stop':
      model.setTyping(c.id, ev.user_id, ev.type === 'typing.start');
      if (ev.type === 'typing.start') setTimeout(render, 8100); // an unrenewed start fades
      break;
    case 'receipt.update':
      if (ev.user_id !== model.me) c.receipts.set(ev.user_id, Math.max(c.receipts.get(ev.user_id) ?? 0, ev.seq));
      break;
    case 'unread.update':
      c.unread = ev.unread;
      if (c.id === ui.selected && ev.unread > 0) markReadSoon(c.id);
      break;
    default:
      return;
  }
  render();
}

function dropConversation(id) {
  model.remove(id);
  if (ui.selected === id) {
    ui.selected = null;
    ui.replyTo = ui.editing = null;
  }
  render();
}

// ------------------------------------------------------------- loading

/** Members and presence of a conversation (and, for the client, its epoch). */
async function loadDetails(id) {
  const cl = client;
  try {
    const [{ conversation, members }, { online }] = await Promise.all([cl.getConversation(id), cl.presence(id)]);
    if (cl !== client || !model.get(id)) return;
    model.upsertConversation(conversation);
    model.setMembers(id, members);
    model.get(id).online = new Set(online);
    render();
  } catch (err) {
    if (err?.code === 'forbidden' || err?.code === 'not_found') dropConversation(id);
  }
}

async function loadPresence(id) {
  const cl = client;
  try {
    const { online } = await cl.presence(id);
    if (cl !== client || !model.get(id)) return;
    model.get(id).online = new Set(online);
    render();
  } catch (err) {
    if (err?.code === 'forbidden' || err?.code === 'not_found') dropConversation(id);
  }
}

async function loadNewest(id) {
  const cl = client;
  model.beginLoad(id);
  render();
  try {
    const page = await cl.history(id, { limit: PAGE_SIZE });
    if (cl !== client) return;
    model.endLoad(id, page);
    if (id === ui.selected) ui.stickToBottom = true;
    render();
    markReadSoon(id);
    fillViewport(id);
  } catch (err) {
    if (cl !== client) return;
    model.failLoad(id);
    fail('Cannot load the conversation')(err);
    render();
  }
}

async function loadOlder(id) {
  const c = model.get(id);
  if (!c || !c.loaded || !c.more || c.loadingOlder) return;
  const cl = client;
  c.loadingOlder = true;
  render();
  try {
    const page = await cl.history(id, { before: c.oldest, limit: PAGE_SIZE });
    if (cl !== client) return;
    model.addOlder(id, page);
  } catch (err) {
    fail('Cannot load older messages')(err);
  } finally {
    c.loadingOlder = false;
    render();
  }
  fillViewport(id);
}

/** Pages back until the list can scroll (so scrolling up can ask for more). */
function fillViewport(id) {
  requestAnimationFrame(() => {
    const box = refs.messages;
    const c = model?.get(id);
    if (c && id === ui.selected && c.more && box.scrollHeight <= box.clientHeight + 10) loadOlder(id);
  });
}

async function loadPins(id) {
  const cl = client;
  try {
    const { pins } = await cl.pins(id);
    if (cl !== client || !model.get(id)) return;
    model.setPins(id, pins);
    render();
  } catch (err) {
    if (err?.code !== 'unknown_type') console.warn('pins:', err);
  }
}

async function refreshUnread() {
  const cl = client;
  try {
    const { conversations } = await cl.unread();
    if (cl !== client) return;
    for (const u of conversations) {
      const c = model.get(u.conversation_id);
      if (c) c.unread = u.unread;
    }
    if (ui.selected != null) markReadSoon(ui.selected);
    render();
  } catch (err) {
    if (err?.code !== 'unknown_type') console.warn('unread:', err);
  }
}

const readTimers = new Map();
/** Marks the selected conversation read up to what is shown, shortly (coalesced). */
function markReadSoon(id) {
  if (readTimers.has(id)) return;
  readTimers.set(
    id,
    setTimeout(async () => {
      readTimers.delete(id);
      const c = model?.get(id);
      if (!c || id !== ui.selected || !c.loaded || document.visibilityState !== 'visible') return;
      const seq = c.seq;
      if (seq <= (c.readSent ?? 0) && c.unread === 0) return;
      c.readSent = seq;
      try {
        const r = await client.markRead(id, seq);
        c.unread = r.unread;
        render();
      } catch (err) {
        if (err?.code !== 'unknown_type') console.warn('read:', err);
      }
    }, 300),
  );
}

document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && ui.selected != null) markReadSoon(ui.selected);
});
window.addEventListener('online', render);
window.addEventListener('offline', render);

// --------------------------------------------------------------- actions

function select(id) {
  if (ui.selected === id || !model.get(id)) return;
  if (ui.selected != null) client.typing.stop(ui.selected);
  ui.selected = id;
  ui.editing = ui.replyTo = null;
  ui.stickToBottom = true;
  const c = model.get(id);
  if (!c.loaded && !c.loading) loadNewest(id);
  if (!c.pinsLoaded) loadPins(id);
  if (!c.membersLoaded) loadDetails(id);
  markReadSoon(id);
  render();
  refs.text.focus();
}

refs.conversations.addEventListener('click', (e) => {
  const btn = e.target.closest('[data-testid="conversation"]');
  if (btn) select(Number(btn.dataset.id));
});

refs.newKind.addEventListener('change', () => {
  const direct = refs.newKind.value === 'direct';
  refs.newName.disabled = direct;
  refs.newMembers.placeholder = direct ? 'bob' : 'bob, carol';
});

refs.newConversation.addEventListener('submit', async (e) => {
  e.preventDefault();
  const kind = refs.newKind.value;
  const members = refs.newMembers.value.split(/[\s,]+/).filter(Boolean);
  if (kind === 'direct' && members.length !== 1) return toast('A direct conversation has exactly one other member.');
  const spec = { kind, members };
  if (kind !== 'direct' && refs.newName.value.trim()) spec.name = refs.newName.value.trim();
  try {
    const { conversation } = await client.createConversation(spec);
    model.upsertConversation(conversation);
    refs.newName.value = refs.newMembers.value = '';
    loadDetails(conversation.id);
    select(conversation.id);
  } catch (err) {
    fail('Cannot create the conversation')(err);
  }
});

refs.retry.addEventListener('click', () => client?.reconnect());

refs.pinsToggle.addEventListener('click', () => {
  ui.pinsOpen = !ui.pinsOpen;
  if (ui.pinsOpen && ui.selected != null) loadPins(ui.selected);
  render();
});

refs.pinsList.addEventListener('click', (e) => {
  const btn = e.target.closest('[data-action]');
  if (!btn) return;
  const id = Number(btn.dataset.messageId);
  if (btn.dataset.action === 'unpin') client.unpin(id).catch(fail('Cannot unpin'));
  if (btn.dataset.action === 'jump') {
    const row = refs.timeline.querySelector(`[data-testid="message"][data-id="${id}"]`);
    row?.scrollIntoView({ block: 'center' });
    row?.focus();
  }
});

refs.older.addEventListener('click', () => ui.selected != null && loadOlder(ui.selected));
refs.messages.addEventListener('scroll', () => {
  if (refs.messages.scrollTop < 60 && ui.selected != null) loadOlder(ui.selected);
});

refs.timeline.addEventListener('click', (e) => {
  const btn = e.target.closest('button[data-action]');
  const row = e.target.closest('[data-testid="message"]');
  if (!btn || !row) return;
  const id = Number(row.dataset.id);
  const c = model.get(ui.selected);
  const msg = c?.messages.get(id);
  if (!msg) return;
  const emoji = btn.dataset.emoji;
  switch (btn.dataset.action) {
    case 'react':
      client.react(id, emoji).catch(fail('Cannot react'));
      break;
    case 'unreact':
      client.unreact(id, emoji).catch(fail('Cannot remove the reaction'));
      break;
    case 'reply':
      ui.replyTo = id;
      render();
      refs.text.focus();
      break;
    case 'pin':
      client.pin(id).catch(fail('Cannot pin'));
      break;
    case 'unpin':
      client.unpin(id).catch(fail('Cannot unpin'));
      break;
    case 'edit':
      ui.editing = id;
      ui.editDraft = msg.text;
      render();
      setTimeout(() => refs.timeline.querySelector(`[data-id="${id}"] .edit-text`)?.focus()); // after the render
      break;
    case 'cancel-edit':
      ui.editing = ui.editDraft = null;
      render();
      break;
    case 'delete':
      client.deleteMessage(id).catch(fail('Cannot delete'));
      break;
    default:
      break;
  }
});

refs.timeline.addEventListener('input', (e) => {
  if (e.target.classList.contains('edit-text')) ui.editDraft = e.target.value;
});

refs.timeline.addEventListener('keydown', (e) => {
  if (!e.target.classList.contains('edit-text')) return;
  if (e.key === 'Escape') {
    ui.editing = ui.editDraft = null;
    render();
  } else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    e.target.form.requestSubmit();
  }
});

refs.timeline.addEventListener('submit', async (e) => {
  e.preventDefault();
  const form = e.target;
  if (form.dataset.action !== 'save-edit') return;
  const id = Number(form.dataset.messageId);
  const text = form.querySelector('textarea').value.trim();
  if (!text) return;
  ui.editing = ui.editDraft = null;
  render();
  client.editMessage(id, text).catch(fail('Cannot edit'));
});

// -------------------------------------------------------------- composer

refs.text.addEventListener('input', () => {
  autoSize();
  if (ui.selected == null) return;
  if (refs.text.value.trim()) client.typing.keystroke(ui.selected);
  else client.typing.stop(ui.selected);
});

refs.text.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    refs.composer.requestSubmit();
  } else if (e.key === 'Escape' && ui.replyTo != null) {
    ui.replyTo = null;
    render();
  }
});

refs.replyCancel.addEventListener('click', () => {
  ui.replyTo = null;
  render();
  refs.text.focus();
});

refs.composer.addEventListener('submit', async (e) => {
  e.preventDefault();
  const id = ui.selected;
  const text = refs.text.value.trim();
  if (id == null || !text) return;
  const replyTo = ui.replyTo ?? undefined;
  refs.text.value = '';
  autoSize();
  ui.replyTo = null;
  ui.stickToBottom = true;
  const sent = client.send(id, text, { replyTo });
  const entry = { clientKey: sent.clientKey, conversationId: id, text };
  pending.push(entry);
  render();
  try {
    await sent;
  } catch (err) {
    fail('Not sent')(err);
    if (!refs.text.value) refs.text.value = text; // give it back to retry
  } finally {
    pending = pending.filter((p) => p !== entry);
    render();
  }
});

function autoSize() {
  refs.text.style.height = 'auto';
  refs.text.style.height = `${Math.min(refs.text.scrollHeight, 160)}px`;
}

// A #token= link opened on a page already showing the sign-in form.
window.addEventListener('hashchange', () => {
  if (!client && location.hash.includes('token=')) boot();
});

boot();
