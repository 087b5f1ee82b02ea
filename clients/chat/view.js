/**
 * Rendering: the model into the DOM. User text only ever goes in through
 * textContent. Message rows are kept by key and rebuilt only when what they
 * show changed (so hover, focus and an open editor survive other updates).
 * @module
 */

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '🎉'];

/** Creates an element: h('button', {class: 'x', onclick}, 'text', child…). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A small push-pin (no emoji font needed). */
export function pinIcon() {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('class', 'icon-pin');
  svg.setAttribute('aria-hidden', 'true');
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', 'M9 3h6l-1 6 3.5 4h-11L10 9zM12 13v8');
  svg.append(path);
  return svg;
}

function time(ms) {
  return h('time', { datetime: new Date(ms).toISOString(), title: fullFormat.format(ms) }, timeFormat.format(ms));
}

/** An http(s) URL to link to, or null (never a javascript: or data: URL from another user). */
function safeUrl(url) {
  try {
    const u = new URL(url, location.href);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

function clip(text, n = 80) {
  return text.length > n ? `${text.slice(0, n - 1)}…` : text;
}

// ------------------------------------------------------------ connection

const STATE_TEXT = {
  connecting: 'connecting…',
  open: 'connected',
  reconnecting: 'reconnecting…',
  offline: 'offline',
  closed: 'disconnected',
};

/**
 * The connection indicator. While the browser reports offline but the
 * socket is still open (being checked), it already says offline.
 */
export function renderState(refs, client, ui) {
  let state = client ? client.state : 'closed';
  if (state === 'open' && !navigator.onLine) state = 'offline';
  let text = STATE_TEXT[state] ?? state;
  const waiting = state === 'reconnecting' || state === 'connecting';
  if (waiting && ui.retry?.reason === 'rejected') {
    // Closed before hello: in a browser a refused token (401) and an unreachable host look alike.
    text = 'cannot connect (token refused, or host unreachable)';
  }
  if (waiting && ui.retry && ui.retry.delayMs >= 1000) text += ` — retrying in ${Math.round(ui.retry.delayMs / 1000)} s`;
  if (state === 'offline') text = 'offline — waiting for the network';
  if (!client) text = 'signed out';
  refs.state.dataset.state = client ? state : 'closed';
  refs.stateText.textContent = text;
  refs.retry.hidden = !(client && waiting && ui.retry);
}

// --------------------------------------------------------- conversations

export function renderConversations(ul, model, ui) {
  const wanted = model.list().map((c) => {
    const title = model.title(c);
    const other = c.kind === 'direct' ? [...c.members.keys()].find((u) => u !== model.me) : null;
    const online = other ? c.online.has(other) : null;
    const selected = c.id === ui.selected;
    const unread = selected ? 0 : c.unread; // the open conversation is being read
    const build = () =>
      h(
        'li',
        {},
        h(
          'button',
          {
            type: 'button',
            class: `conv${selected ? ' selected' : ''}${unread > 0 ? ' has-unread' : ''}`,
            'aria-current': selected ? 'true' : undefined,
            dataset: { testid: 'conversation', id: String(c.id), kind: c.kind, title },
          },
          h('span', { class: 'conv-icon', 'aria-hidden': 'true' }, c.kind === 'direct' ? '@' : c.kind === 'channel' ? '#' : '◆'),
          other ? presenceDot(online) : null,
          h('span', { class: 'conv-name' }, title),
          unread > 0 ? h('span', { class: 'badge', dataset: { testid: 'unread' }, 'aria-label': `${unread} unread` }, String(unread)) : null,
        ),
      );
    return { key: `c${c.id}`, sig: JSON.stringify([title, c.kind, online, selected, unread]), build };
  });
  if (!wanted.length) wanted.push({ key: 'none', sig: '', build: () => h('li', { class: 'hint' }, 'No conversations yet.') });
  reconcile(ul, wanted); // rows kept (and a focused one keeps focus) unless they changed
}

function presenceDot(online) {
  return h('span', {
    class: `dot ${online ? 'online' : 'offline'}`,
    title: online ? 'online' : 'offline',
    'aria-label': online ? 'online' : 'offline',
    role: 'img',
  });
}

// ---------------------------------------------------------------- header

export function renderHeader(refs, model, c) {
  refs.convTitle.textContent = model.title(c);
  const members = [...c.members.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  refs.members.replaceChildren(
    ...members.map(([user, role]) =>
      h(
        'li',
        { class: 'member', dataset: { testid: 'member', user, presence: c.online.has(user) ? 'online' : 'offline' } },
        presenceDot(c.online.has(user)),
        h('span', {}, user === model.me ? `${user} (you)` : user),
        role !== 'member' && c.kind !== 'direct' ? h('span', { class: 'role' }, role) : null,
      ),
    ),
  );
  refs.pinsCount.textContent = c.pins.size ? String(c.pins.size) : '';
}

export function renderPins(refs, model, c, open) {
  refs.pinsToggle.setAttribute('aria-expanded', String(open));
  refs.pins.hidden = !open;
  if (!open) return;
  const pins = [...c.pins.entries()].sort((a, b) => b[1].pinned_at - a[1].pinned_at);
  refs.pinsList.replaceChildren(
    ...pins.map(([id, p]) => {
      const msg = c.messages.get(id);
      const author = msg?.author ?? p.author ?? '?';
      const text = msg?.text ?? p.text ?? '';
      return h(
        'li',
        { class: 'pin', dataset: { testid: 'pin', messageId: String(id) } },
        h('button', { type: 'button', class: 'link pin-jump', dataset: { action: 'jump', messageId: String(id) } }, h('b', {}, author), ': ', clip(text, 120)),
        h('span', { class: 'hint' }, ` pinned by ${p.pinned_by}`),
        h('button', { type: 'button', class: 'icon', 'aria-label': 'Unpin', title: 'Unpin', dataset: { action: 'unpin', messageId: String(id) } }, '×'),
      );
    }),
  );
  if (!pins.length) refs.pinsList.append(h('li', { class: 'hint' }, 'Nothing pinned.'));
}

export function renderTyping(el, model, c) {
  const users = c ? model.typingUsers(c) : [];
  let text = '';
  if (users.length === 1) text = `${users[0]} is typing…`;
  else if (users.length === 2) text = `${users[0]} and ${users[1]} are typing…`;
  else if (users.length > 2) text = 'several people are typing…';
  if (el.textContent !== text) el.textContent = text;
}

// -------------------------------------------------------------- timeline

/**
 * Brings the timeline list in line with the conversation: one row per
 * entry (message or system line) in seq order, then the sends still waiting
 * for their ack.
 */
export function renderTimeline(ol, model, c, ui, pending) {
  const seen = seenBy(model, c);
  const wanted = [];
  let prev = null;
  for (const [seq, e] of model.entries(c)) {
    if (e.type === 'system') {
      wanted.push({ key: `s${c.id}:${seq}`, sig: e.text, build: () => h('li', { class: 'system', dataset: { testid: 'system', seq: String(seq) } }, e.text) });
      prev = null;
      continue;
    }
    const msg = c.messages.get(e.id);
    if (!msg) continue;
    const continued = !!prev && prev.author === msg.author && msg.created_at - prev.created_at < 5 * 60_000;
    const quoted = msg.reply_to != null ? c.messages.get(msg.reply_to) : null;
    const quote = msg.reply_to != null ? (quoted ? [quoted.author, quoted.deleted ? null : quoted.text] : ['', null]) : null;
    const editing = ui.editing === msg.id;
    const readers = seen.get(seq) ?? [];
    const sig = JSON.stringify([msg.rev, msg.text, msg.deleted, msg.edited_at, msg.reactions, !!msg.pinned, quote, continued, editing, readers, ui.replyTo === msg.id]);
    wanted.push({ key: `m${msg.id}`, sig, build: () => messageRow(model, msg, { continued, quote, editing, readers, draft: ui.editDraft, replying: ui.replyTo === msg.id }) });
    prev = msg;
  }
  for (const p of pending) {
    if (p.conversationId !== c.id) continue;
    wanted.push({
      key: `p${p.clientKey}`,
      sig: 'pending',
      build: () =>
        h(
          'li',
          { class: 'message mine pending', dataset: { testid: 'pending' } },
          h('div', { class: 'bubble' }, h('div', { class: 'meta' }, h('span', { class: 'author' }, model.me), h('span', {}, 'sending…')), h('div', { class: 'text' }, p.text)),
        ),
    });
  }
  reconcile(ol, wanted);
}

/** Keyed update of a list's children: reuses rows whose signature did not change. */
function reconcile(parent, wanted) {
  const existing = new Map();
  for (const el of parent.children) existing.set(el.dataset.key, el);
  let cursor = parent.firstElementChild;
  for (const w of wanted) {
    let el = existing.get(w.key);
    if (el && el.dataset.sig !== w.sig) {
      const fresh = w.build();
      el.replaceWith(fresh);
      if (cursor === el) cursor = fresh;
      el = fresh;
    } else if (!el) {
      el = w.build();
    }
    existing.delete(w.key);
    el.dataset.key = w.key;
    el.dataset.sig = w.sig;
    if (el !== cursor) parent.insertBefore(el, cursor);
    else cursor = cursor.nextElementSibling;
  }
  for (const el of existing.values()) el.remove();
}

/** Message seq -> the other members who have read up to it (shown under their newest read message from someone else). */
function seenBy(model, c) {
  const out = new Map();
  if (!c.receipts.size) return out;
  const messages = model
    .entries(c)
    .filter(([, e]) => e.type === 'message')
    .map(([seq, e]) => [seq, c.messages.get(e.id)?.author]);
  for (const [user, readSeq] of c.receipts) {
    if (user === model.me) continue;
    let best = null; // their newest read message among those they did not write
    for (const [seq, author] of messages) if (seq <= readSeq && author !== user) best = seq;
    if (best !== null) out.set(best, [...(out.get(best) ?? []), user].sort());
  }
  return out;
}

function messageRow(model, msg, { continued, quote, editing, readers, draft, replying }) {
  const mine = msg.author === model.me;
  const classes = ['message'];
  if (mine) classes.push('mine');
  if (continued) classes.push('continued');
  if (msg.deleted) classes.push('deleted');
  if (msg.pinned) classes.push('pinned');
  if (replying) classes.push('replying');
  const li = h('li', {
    class: classes.join(' '),
    tabindex: '-1',
    dataset: { testid: 'message', seq: String(msg.seq), id: String(msg.id), author: msg.author },
  });
  // The row spans the width (hovering anywhere on it shows its actions); the bubble holds the message.
  const bubble = h('div', { class: 'bubble' });
  li.append(bubble);
  bubble.append(
    h(
      'div',
      { class: 'meta' },
      h('span', { class: 'author' }, msg.author),
      time(msg.created_at),
      msg.edited_at && !msg.deleted ? h('span', { class: 'edited', dataset: { testid: 'edited' } }, '(edited)') : null,
      msg.pinned ? h('span', { class: 'pin-badge', title: `pinned by ${msg.pinned.pinned_by}`, dataset: { testid: 'pinned' } }, pinIcon(), 'pinned') : null,
    ),
  );
  if (quote) {
    const [author, text] = quote;
    bubble.append(
      h(
        'blockquote',
        { class: 'quote', dataset: { testid: 'quote' } },
        author ? h('b', {}, author) : 'an earlier message',
        author ? `: ${text === null ? 'message deleted' : clip(text)}` : '',
      ),
    );
  }
  if (editing) {
    const area = h('textarea', { class: 'edit-text', rows: '2', 'aria-label': 'Edit message', dataset: { testid: 'edit-text' } });
    area.value = draft ?? msg.text;
    bubble.append(
      h(
        'form',
        { class: 'edit', dataset: { action: 'save-edit', messageId: String(msg.id) } },
        area,
        h('div', { class: 'edit-buttons' }, h('button', { type: 'submit' }, 'Save'), h('button', { type: 'button', class: 'secondary', dataset: { action: 'cancel-edit' } }, 'Cancel')),
      ),
    );
  } else {
    bubble.append(h('div', { class: 'text', dataset: { testid: 'text' } }, msg.deleted ? 'message deleted' : msg.text));
  }
  for (const a of msg.deleted ? [] : msg.attachments) {
    const href = safeUrl(a.url);
    const label = `${a.file_name} (${a.mime_type})`;
    bubble.append(href ? h('a', { class: 'attachment', href, target: '_blank', rel: 'noopener noreferrer' }, label) : h('span', { class: 'attachment' }, label));
  }
  const reactions = Object.entries(msg.reactions).filter(([, users]) => users.length);
  if (reactions.length) {
    bubble.append(
      h(
        'ul',
        { class: 'reactions', 'aria-label': 'Reactions' },
        reactions.map(([emoji, users]) => {
          const me = users.includes(model.me);
          return h(
            'li',
            {},
            h(
              'button',
              {
                type: 'button',
                class: `reaction${me ? ' mine' : ''}`,
                'aria-pressed': String(me),
                title: users.join(', '),
                'aria-label': `${emoji} ${users.length}: ${users.join(', ')}`,
                dataset: { action: me ? 'unreact' : 'react', emoji, testid: 'reaction' },
              },
              h('span', { class: 'emoji' }, emoji),
              h('span', { class: 'count', dataset: { testid: 'reaction-count' } }, String(users.length)),
            ),
          );
        }),
      ),
    );
  }
  if (!msg.deleted && !editing) {
    const mineEmoji = new Set(Object.entries(msg.reactions).filter(([, u]) => u.includes(model.me)).map(([e]) => e));
    const tool = (action, label, glyph) => h('button', { type: 'button', class: 'tool', title: label, 'aria-label': label, dataset: { action } }, glyph);
    bubble.append(
      h(
        'div',
        { class: 'actions', role: 'toolbar', 'aria-label': 'Message actions' },
        QUICK_REACTIONS.map((e) =>
          h('button', { type: 'button', class: 'tool', title: `React ${e}`, 'aria-label': `React ${e}`, 'aria-pressed': String(mineEmoji.has(e)), dataset: { action: mineEmoji.has(e) ? 'unreact' : 'react', emoji: e } }, e),
        ),
        h('span', { class: 'sep', 'aria-hidden': 'true' }),
        tool('reply', 'Reply', '↩'),
        tool(msg.pinned ? 'unpin' : 'pin', msg.pinned ? 'Unpin' : 'Pin', pinIcon()),
        mine ? tool('edit', 'Edit', '✎') : null,
        mine ? tool('delete', 'Delete', '✕') : null,
      ),
    );
  }
  if (readers.length) bubble.append(h('div', { class: 'seen', dataset: { testid: 'seen' } }, `Seen by ${readers.join(', ')}`));
  return li;
}
