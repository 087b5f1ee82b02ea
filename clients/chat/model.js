/**
 * What the page knows about each conversation, built from two sources:
 * history pages (snapshots: every message as it is now, with its
 * decorations, as of the page's `last_seq`) and live events from the client
 * (persistent ones exactly once, in seq order).
 *
 * Two rules keep them from fighting:
 * - a conversation's `seq` is the newest stream position reflected in the
 *   model; a live event at or below it is already in (a snapshot showed it);
 * - each message has a `rev`, the position its state is as of; an event or
 *   snapshot older than that leaves it alone.
 * While the newest page of a conversation is being fetched, its live events
 * wait and are applied after the snapshot (those it already reflects are
 * dropped).
 * No DOM here.
 * @module
 */

export class ChatModel {
  /** @param {string} me  the signed-in user id */
  constructor(me) {
    this.me = me;
    /** @type {Map<number, any>} */
    this.conversations = new Map();
  }

  /** @returns {any|undefined} */
  get(id) {
    return this.conversations.get(Number(id));
  }

  /** Gets or creates a conversation's record. */
  conv(id) {
    id = Number(id);
    let c = this.conversations.get(id);
    if (!c) {
      c = {
        id,
        kind: 'group',
        name: '',
        creator: '',
        createdAt: 0,
        lastAt: 0,
        lastSeq: 0,
        seq: 0,
        members: new Map(), // user id -> role
        membersLoaded: false,
        online: new Set(),
        typing: new Map(), // user id -> expiry (ms)
        receipts: new Map(), // user id -> read position
        messages: new Map(), // message id -> message
        timeline: new Map(), // seq -> {type: 'message', id} | {type: 'system', text, at}
        pins: new Map(), // message id -> {pinned_by, pinned_at, text, author}
        pinsLoaded: false,
        unread: 0,
        loaded: false,
        loading: false,
        pending: [], // live events held while the newest page loads
        more: false, // older events exist
        oldest: null, // lowest seq of the loaded pages
        loadingOlder: false,
      };
      this.conversations.set(id, c);
    }
    return c;
  }

  /** A conversation object from conversation.list / create / get. */
  upsertConversation(o) {
    const c = this.conv(o.id);
    c.kind = o.kind ?? c.kind;
    c.name = o.name ?? c.name;
    c.creator = o.creator ?? c.creator;
    c.createdAt = o.created_at ?? c.createdAt;
    c.lastAt = Math.max(c.lastAt, c.createdAt);
    if (Number.isInteger(o.last_seq)) c.lastSeq = Math.max(c.lastSeq, o.last_seq);
    return c;
  }

  setMembers(id, members) {
    const c = this.conv(id);
    c.members = new Map(members.map((m) => [m.user_id, m.role]));
    c.membersLoaded = true;
  }

  remove(id) {
    this.conversations.delete(Number(id));
  }

  /** Conversations for the list: the most recently active first. */
  list() {
    return [...this.conversations.values()].sort((a, b) => b.lastAt - a.lastAt || b.id - a.id);
  }

  /** The name to show: a direct conversation is named after the other member. */
  title(c) {
    if (c.kind === 'direct') {
      const other = [...c.members.keys()].find((u) => u !== this.me);
      return other ?? (c.name || 'direct');
    }
    return c.name || `conversation ${c.id}`;
  }

  /** Timeline entries in seq order. */
  entries(c) {
    return [...c.timeline.entries()].sort((a, b) => a[0] - b[0]);
  }

  /** The newest message's seq (for read receipts). */
  newestMessageSeq(c) {
    let best = 0;
    for (const [seq, e] of c.timeline) if (e.type === 'message' && seq > best) best = seq;
    return best;
  }

  // ------------------------------------------------------------ history

  beginLoad(id) {
    const c = this.conv(id);
    c.loading = true;
    c.pending = [];
  }

  /** The newest page arrived: take the snapshot, then the events held meanwhile. */
  endLoad(id, page) {
    const c = this.conv(id);
    this._snapshot(c, page.events, page.last_seq);
    c.seq = Math.max(c.seq, page.last_seq);
    c.lastSeq = Math.max(c.lastSeq, page.last_seq);
    c.more = !!page.more;
    c.loaded = true;
    c.loading = false;
    const held = c.pending.splice(0);
    for (const ev of held) this.applyEvent(ev);
  }

  failLoad(id) {
    const c = this.conv(id);
    c.loading = false;
    const held = c.pending.splice(0);
    for (const ev of held) this.applyEvent(ev);
  }

  /** An older page (history before the oldest loaded seq). */
  addOlder(id, page) {
    const c = this.conv(id);
    this._snapshot(c, page.events, page.last_seq);
    c.more = !!page.more && page.events.length > 0;
  }

  /** A resync: the view of the conversation is replaced by these events. */
  reset(id, events, lastSeq, more) {
    const c = this.conv(id);
    c.messages.clear();
    c.timeline.clear();
    c.pending = [];
    c.oldest = null;
    c.seq = 0;
    this._snapshot(c, events, lastSeq);
    c.seq = lastSeq;
    c.lastSeq = Math.max(c.lastSeq, lastSeq);
    c.more = !!more;
    c.loaded = true;
    c.loading = false;
    c.pinsLoaded = false; // reloaded when next shown
  }

  _snapshot(c, events, asOf) {
    for (const ev of events) {
      if (c.oldest === null || ev.seq < c.oldest) c.oldest = ev.seq;
      if (ev.message) this._takeMessage(c, ev.message, asOf, true);
      if (ev.type === 'message.new' && ev.message) {
        c.timeline.set(ev.seq, { type: 'message', id: ev.message.id });
      } else {
        const text = systemText(ev);
        if (text) c.timeline.set(ev.seq, { type: 'system', text, at: ev.at });
      }
      if (ev.type === 'conversation.create' && !c.membersLoaded) {
        for (const u of ev.members ?? []) if (!c.members.has(u)) c.members.set(u, u === ev.actor ? 'owner' : 'member');
      }
      c.lastAt = Math.max(c.lastAt, ev.at ?? 0);
    }
  }

  /** Takes a message object; `full` snapshots carry the decorations (reactions, pinned). */
  _takeMessage(c, m, rev, full) {
    const old = c.messages.get(m.id);
    // Equal positions: a full snapshot still brings the decorations an event lacks.
    if (old && (old.rev > rev || (old.rev === rev && !full))) return old;
    const msg = {
      id: m.id,
      seq: m.seq,
      author: m.author,
      text: m.text ?? '',
      reply_to: m.reply_to,
      attachments: m.attachments ?? [],
      created_at: m.created_at,
      edited_at: m.edited_at,
      deleted: !!m.deleted,
      reactions: full ? cloneReactions(m.reactions) : old?.reactions ?? cloneReactions(m.reactions),
      pinned: full ? m.pinned ?? null : old?.pinned ?? m.pinned ?? null,
      rev,
    };
    c.messages.set(m.id, msg);
    return msg;
  }

  // -------------------------------------------------------- live events

  /**
   * Applies a persistent event (in seq order, once: the client sees to it).
   * @returns {boolean} whether the model changed
   */
  applyEvent(ev) {
    const c = this.conv(ev.conversation_id);
    if (c.loading) {
      c.pending.push(ev);
      return false;
    }
    if (ev.seq <= c.seq) return false;
    c.seq = ev.seq;
    c.lastSeq = Math.max(c.lastSeq, ev.seq);
    c.lastAt = Math.max(c.lastAt, ev.at ?? 0);
    const text = systemText(ev);
    if (text) c.timeline.set(ev.seq, { type: 'system', text, at: ev.at });
    switch (ev.type) {
      case 'conversation.create':
        c.kind = ev.kind ?? c.kind;
        c.name = ev.name ?? c.name;
        c.creator = ev.actor;
        c.createdAt = c.createdAt || ev.at;
        for (const u of ev.members ?? []) if (!c.members.has(u)) c.members.set(u, u === ev.actor ? 'owner' : 'member');
        break;
      case 'member.join':
      case 'member.role':
        c.members.set(ev.user_id, ev.role);
        break;
      case 'member.leave':
        c.members.delete(ev.user_id);
        c.online.delete(ev.user_id);
        c.typing.delete(ev.user_id);
        break;
      case 'message.new':
        this._takeMessage(c, ev.message, ev.seq, false);
        c.timeline.set(ev.seq, { type: 'message', id: ev.message.id });
        break;
      case 'message.edit':
      case 'message.delete': {
        const msg = this._takeMessage(c, ev.message, ev.seq, false);
        if (msg.deleted) {
          msg.reactions = {};
          if (c.pins.delete(msg.id)) msg.pinned = null;
        } else if (c.pins.has(msg.id)) {
          c.pins.get(msg.id).text = msg.text;
        }
        break;
      }
      case 'reaction.add':
      case 'reaction.remove': {
        const msg = c.messages.get(ev.message_id);
        if (!msg || msg.rev >= ev.seq) break;
        msg.rev = ev.seq;
        const users = new Set(msg.reactions[ev.emoji] ?? []);
        if (ev.type === 'reaction.add') users.add(ev.user_id);
        else users.delete(ev.user_id);
        if (users.size) msg.reactions[ev.emoji] = [...users];
        else delete msg.reactions[ev.emoji];
        break;
      }
      case 'pin.add':
      case 'pin.remove': {
        const msg = c.messages.get(ev.message_id);
        if (ev.type === 'pin.add') {
          c.pins.set(ev.message_id, { pinned_by: ev.pinned_by ?? ev.actor, pinned_at: ev.at, text: msg?.text, author: msg?.author });
        } else {
          c.pins.delete(ev.message_id);
        }
        if (msg && msg.rev < ev.seq) {
          msg.rev = ev.seq;
          msg.pinned = ev.type === 'pin.add' ? { message_id: ev.message_id, pinned_by: ev.pinned_by ?? ev.actor, pinned_at: ev.at } : null;
        }
        break;
      }
      default:
        break;
    }
    return true;
  }

  /** The `pins` command's answer. */
  setPins(id, pins) {
    const c = this.conv(id);
    c.pins = new Map(pins.map((p) => [p.message_id, { pinned_by: p.pinned_by, pinned_at: p.pinned_at, text: p.text, author: p.author }]));
    c.pinsLoaded = true;
  }

  // ---------------------------------------------------- ephemeral state

  setTyping(id, user, typing, now = Date.now()) {
    const c = this.conv(id);
    if (user === this.me) return;
    if (typing) c.typing.set(user, now + 8000); // a stop we never hear of ends it anyway
    else c.typing.delete(user);
  }

  /** Users typing now (expired starts dropped). */
  typingUsers(c, now = Date.now()) {
    for (const [u, until] of c.typing) if (until <= now) c.typing.delete(u);
    return [...c.typing.keys()].sort();
  }

  /** After a disconnect: nobody is known to be typing, presence is stale. */
  forgetEphemeral() {
    for (const c of this.conversations.values()) c.typing.clear();
  }
}

function cloneReactions(r) {
  const out = {};
  for (const [emoji, users] of Object.entries(r ?? {})) if (users?.length) out[emoji] = [...users];
  return out;
}

/** The line shown in the timeline for a membership event, or null. */
export function systemText(ev) {
  switch (ev.type) {
    case 'conversation.create':
      return `${ev.actor} created ${ev.kind === 'direct' ? 'this direct conversation' : `“${ev.name || 'the conversation'}”`}`;
    case 'member.join':
      return ev.actor === ev.user_id ? `${ev.user_id} joined` : `${ev.actor} added ${ev.user_id}`;
    case 'member.leave':
      return ev.actor === ev.user_id ? `${ev.user_id} left` : `${ev.actor} removed ${ev.user_id}`;
    case 'member.role':
      return `${ev.actor} made ${ev.user_id} ${ev.role}`;
    default:
      return null;
  }
}
