/**
 * The Switchboard client: one WebSocket connection to a host, kept open
 * (reconnect with backoff), resumed exactly after every reconnect, with
 * commands as promises and events as listeners. Written from
 * docs/protocol.md; see docs/clients.md for the guide.
 * @module
 */

import { Backoff } from './backoff.js';
import { Emitter } from './emitter.js';
import { SwitchboardError } from './errors.js';
import { newClientKey } from './keys.js';
import { defaultNetwork, NetworkWatch } from './network.js';
import { MemoryPositionStore } from './positions.js';
import { isPersistent, Streams } from './streams.js';
import { TypingNotifier } from './typing.js';

/** The host runs these alone; later commands wait behind them (docs/protocol.md). */
const EXCLUSIVE = new Set(['history', 'subscribe']);

/**
 * Commands that are safe to write again after the connection dropped with
 * their answer outstanding: reads, and writes the host makes idempotent
 * (a second reaction.add answers changed:false; a message.send with the
 * same client_key returns the original). Others fail with `disconnected`.
 */
const RETRY_SAFE = new Set([
  'message.send',
  'message.delete',
  'history',
  'conversation.list',
  'conversation.get',
  'conversation.join',
  'presence',
  'ping',
  'pins',
  'pin.add',
  'pin.remove',
  'reaction.add',
  'reaction.remove',
  'read',
  'unread',
]);

/** The host's limit of commands running at once per connection. */
const MAX_IN_FLIGHT = 16;

/** Internal-retry limit for a message.send answered `internal`. */
const SEND_INTERNAL_RETRIES = 3;

function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

function unref(timer) {
  timer?.unref?.();
  return timer;
}

function withToken(url, token) {
  const sep = url.includes('?') ? '&' : '?';
  return `${url}${sep}token=${encodeURIComponent(token)}`;
}

function frameText(data) {
  if (typeof data === 'string') return data;
  if (data instanceof ArrayBuffer) return new TextDecoder().decode(data);
  if (ArrayBuffer.isView(data)) return new TextDecoder().decode(data);
  return String(data);
}

/**
 * @typedef {'connecting'|'open'|'reconnecting'|'offline'|'closed'} ConnectionState
 */

/**
 * A connection to a Switchboard host that reconnects, resumes and retries by
 * itself. Listen with on(type, fn): `state`, `open`, `disconnect`, `retry`,
 * `synced`, `resume`, `resync`, `error`, `event`, and each protocol event
 * type (`message.new`, `typing.start`, …).
 */
export class SwitchboardClient extends Emitter {
  /**
   * @param {object} options  (all but `url` and a token optional; docs/clients.md has the table)
   * @param {string} options.url  ws://host:port/ws or wss://…/ws
   * @param {string} [options.token]  a fixed JWT
   * @param {(ctx: {reason: 'connect'|'reconnect'|'rejected', attempt: number}) => string|Promise<string>} [options.getToken]
   *   called before every connection attempt
   * @param {Function} [options.WebSocket=globalThis.WebSocket]  in Node: the ws package
   * @param {object} [options.webSocketOptions]  third constructor argument for ws (origin, headers)
   * @param {object} [options.positions]  a position store (default MemoryPositionStore)
   * @param {Backoff|object} [options.backoff]  reconnect backoff or its options
   * @param {number} [options.stableAfterMs=10000]  open this long: the backoff resets
   * @param {number} [options.commandTimeoutMs=15000]
   * @param {number} [options.sendTimeoutMs=0]  0: retry a send until acknowledged or close()
   * @param {number} [options.connectTimeoutMs=15000]  wait this long for hello
   * @param {number} [options.heartbeatMs=20000]  ping when quiet; 0: off
   * @param {number} [options.maxInFlight=16]
   * @param {boolean} [options.syncConversations=true]  list conversations after each hello
   * @param {number} [options.resyncLimit=50]  events reloaded on recovered:false
   * @param {boolean} [options.orderedSends=true]  one message.send in flight per conversation
   * @param {{renewMs?: number, idleMs?: number}} [options.typing]
   * @param {EventTarget|null} [options.network]  online/offline source (default window when present)
   * @param {number} [options.offlineProbeMs=2500]  on `offline`, ping the open connection; no answer
   *   within this long drops it (it resumes on `online`). 0: leave an open connection alone
   */
  constructor(options = {}) {
    super();
    const o = options;
    if (typeof o.url !== 'string' || !o.url) throw new TypeError('SwitchboardClient: options.url is required (ws://host:port/ws)');
    if (!o.token && typeof o.getToken !== 'function') {
      throw new TypeError('SwitchboardClient: pass options.token or options.getToken');
    }
    this.url = o.url;
    this._token = o.token ?? null;
    this._getToken = typeof o.getToken === 'function' ? o.getToken : null;
    this._WebSocket = o.WebSocket ?? globalThis.WebSocket;
    if (typeof this._WebSocket !== 'function') {
      throw new TypeError('SwitchboardClient: no WebSocket here; pass options.WebSocket (in Node: the ws package)');
    }
    this._webSocketOptions = o.webSocketOptions;
    this._backoff = o.backoff instanceof Backoff ? o.backoff : new Backoff({ initialMs: 500, maxMs: 30000, ...o.backoff });
    this.stableAfterMs = o.stableAfterMs ?? 10000;
    this.commandTimeoutMs = o.commandTimeoutMs ?? 15000;
    this.sendTimeoutMs = o.sendTimeoutMs ?? 0;
    this.connectTimeoutMs = o.connectTimeoutMs ?? 15000;
    this.heartbeatMs = o.heartbeatMs ?? 20000;
    this.offlineProbeMs = o.offlineProbeMs ?? 2500;
    this.maxInFlight = Math.max(1, Math.min(MAX_IN_FLIGHT, o.maxInFlight ?? MAX_IN_FLIGHT));
    this.syncConversations = o.syncConversations ?? true;
    this.resyncLimit = o.resyncLimit ?? 50;
    this.orderedSends = o.orderedSends ?? true;

    this._streams = new Streams(o.positions ?? new MemoryPositionStore());
    this._streams.onStoreError = (err) =>
      this.emit('error', new SwitchboardError('internal', `position store failed: ${err?.message ?? err}`, { cause: err }));

    /** Typing indicators for this client (see TypingNotifier). */
    this.typing = new TypingNotifier({
      send: (type, id) => this._ephemeral(type, id),
      ...(o.typing ?? {}),
    });

    this._network = new NetworkWatch(o.network === undefined ? defaultNetwork() : o.network, {
      onOnline: () => this._onOnline(),
      onOffline: () => this._onOffline(),
    });

    /** @type {ConnectionState} */
    this._state = 'closed';
    this._stopped = true;
    this._everOpen = false;
    this._conn = null;
    this._attempting = false;
    this._retryTimer = null;
    this._stableTimer = null;
    this._nextReason = 'connect';
    this._attempt_no = 0;
    this._queue = [];
    this._nextId = 1;
    this._order = 0;
    // After a rate_limited answer, commands are paced (see _onCommandError).
    this._rateBackoff = new Backoff({ initialMs: 250, maxMs: 5000 });
    this._paceUntil = 0;
    this._paceIntervalMs = 0;
    this._nextWriteAt = 0;
    this._pumpTimer = null;
    this._opened = null;
    this._closeWaiters = [];
    this._loaded = null;
    this._closedByApp = false;
    /** conversation id -> the send that must be stored before the next one (orderedSends) */
    this._sendHolder = new Map();

    /** The user id the host says you are (from `hello`), or null before. */
    this.userId = null;
    /** True once the client followed your conversations (a sync done, or positions from the store). */
    this._followed = false;
    /** The session id of the current connection (from `hello`). */
    this.sessionId = null;
    /** The host's limits (from `hello`): max_frame_bytes, max_text_bytes, commands_per_second, resume_window, history_max. */
    this.limits = null;
  }

  // ---------------------------------------------------------------- state

  /** @returns {ConnectionState} the connection state */
  get state() {
    return this._state;
  }

  /**
   * The stream position delivered to the app for a conversation.
   * @param {number} conversationId
   * @returns {{epoch: string|null, seq: number|null}|undefined}
   */
  position(conversationId) {
    return this._streams.position(conversationId);
  }

  _setState(state) {
    if (state === this._state) return;
    const previous = this._state;
    this._state = state;
    this.emit('state', state, previous);
  }

  // ----------------------------------------------------- connect and close

  /**
   * Starts connecting (and keeps reconnecting until close()).
   * @returns {Promise<object>} the first `hello`; rejects with `closed` if
   *   close() comes first. Reconnecting goes on whether you await it or not.
   */
  connect() {
    if (!this._stopped) return this._opened.promise;
    this._stopped = false;
    this._closedByApp = false;
    this._everOpen = false;
    this._opened = deferred();
    this._opened.promise.catch(() => {}); // an app that does not await it is not an unhandled rejection
    this._nextReason = 'connect';
    this._backoff.reset();
    this._loaded = this._streams.load().then(() => {
      if (this._streams.hasPositions()) this._followed = true;
    }, (err) => {
      this.emit('error', new SwitchboardError('internal', `position store failed to load: ${err?.message ?? err}`, { cause: err }));
    });
    this._network.attach();
    this._attempt();
    return this._opened.promise;
  }

  /**
   * Reconnects now if the client is waiting to retry (a "retry now" button);
   * does nothing while connected or connecting.
   */
  reconnect() {
    if (this._stopped || this._conn || this._attempting) return;
    this._clearRetry();
    this._attempt();
  }

  /**
   * Closes the connection and stops reconnecting. Queued and unanswered
   * commands (sends included) reject with code `closed`.
   * @param {number} [code=1000]
   * @param {string} [reason='']
   * @returns {Promise<void>} resolves once the socket is closed
   */
  close(code = 1000, reason = '') {
    const wasStopped = this._stopped;
    this._stopped = true;
    this._closedByApp = true;
    this._clearRetry();
    clearTimeout(this._stableTimer);
    clearTimeout(this._pumpTimer);
    this._pumpTimer = null;
    this._network.detach();
    this.typing.stopAll({ send: false });
    const closed = () => new SwitchboardError('closed', 'the client was closed');
    for (const cmd of this._queue.splice(0)) this._settle(cmd, closed());
    if (this._opened && !this._everOpen) this._opened.reject(closed());
    const conn = this._conn;
    if (!conn) {
      if (!wasStopped || this._state !== 'closed') this._setState('closed');
      return Promise.resolve();
    }
    for (const cmd of conn.inFlight.values()) this._settle(cmd, closed());
    return new Promise((resolve) => {
      this._closeWaiters.push(resolve);
      try {
        conn.ws.close(code, reason);
      } catch {
        // an invalid code or an already closing socket: drop it below
      }
      // A dead host never answers the close frame: do not wait for it long.
      conn.closeTimer = setTimeout(() => this._finish(conn, { code: 1006, reason: 'close timed out' }), 2000);
    });
  }

  async _attempt() {
    this._retryTimer = null;
    if (this._stopped || this._conn || this._attempting) return;
    if (!this._network.online) return this._setState('offline');
    this._attempting = true;
    this._setState(this._everOpen ? 'reconnecting' : 'connecting');
    const reason = this._nextReason;
    const attempt = ++this._attempt_no;
    let token;
    try {
      await this._loaded;
      token = this._getToken ? await this._getToken({ reason, attempt }) : this._token;
      if (typeof token !== 'string' || !token) throw new Error('the token callback returned no token');
    } catch (err) {
      this._attempting = false;
      if (this._stopped) return;
      this.emit('error', new SwitchboardError('token', `cannot get a token: ${err?.message ?? err}`, { cause: err }));
      return this._scheduleRetry();
    }
    this._attempting = false;
    if (this._stopped || this._conn) return;
    let ws;
    try {
      const url = withToken(this.url, token);
      ws = this._webSocketOptions ? new this._WebSocket(url, undefined, this._webSocketOptions) : new this._WebSocket(url);
    } catch (err) {
      this.emit('error', new SwitchboardError('protocol', `cannot open a WebSocket: ${err?.message ?? err}`, { cause: err }));
      return this._scheduleRetry();
    }
    if ('binaryType' in ws) ws.binaryType = 'arraybuffer';
    const conn = {
      ws,
      helloed: false,
      ready: false,
      finished: false,
      inFlight: new Map(),
      exclusive: false,
      lastFrameAt: Date.now(),
      error: null,
      helloTimer: null,
      heartbeat: null,
      closeTimer: null,
    };
    this._conn = conn;
    ws.addEventListener('message', (ev) => this._onMessage(conn, ev));
    ws.addEventListener('close', (ev) => this._finish(conn, { code: ev.code, reason: ev.reason }));
    ws.addEventListener('error', (ev) => {
      conn.error = ev?.message || ev?.error?.message || 'WebSocket error';
    });
    conn.helloTimer = setTimeout(
      () => this._drop(conn, `no hello within ${this.connectTimeoutMs} ms`),
      this.connectTimeoutMs,
    );
  }

  _scheduleRetry() {
    if (this._stopped) return;
    if (!this._network.online) return this._setState('offline');
    this._setState(this._everOpen ? 'reconnecting' : 'connecting');
    const delayMs = this._backoff.next();
    this.emit('retry', { delayMs, attempt: this._backoff.attempts, reason: this._nextReason });
    this._retryTimer = setTimeout(() => this._attempt(), delayMs);
  }

  _clearRetry() {
    if (this._retryTimer) clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }

  _onOffline() {
    if (this._stopped) return;
    // Retries stop. An open socket may well go on working (offline is a
    // hint), but one on a network that is really gone often stays "open"
    // with nothing getting through — Chromium's offline mode holds its
    // frames and delivers them late, as if live. So it is asked: no answer
    // in time, and it is dropped; `online` then reconnects and resumes, and
    // what was missed arrives through the resume, exactly once.
    if (!this._conn && !this._attempting) {
      this._clearRetry();
      this._setState('offline');
      return;
    }
    const conn = this._conn;
    if (!conn || !conn.helloed || conn.offlineProbe || this.offlineProbeMs <= 0) return;
    conn.offlineProbe = true;
    this._command('ping', {}, { conn, internal: true, front: true, timeout: this.offlineProbeMs })
      .catch((err) => {
        if (err?.code === 'timeout' && !this._network.online && this._conn === conn) {
          this._drop(conn, 'no answer while the network is offline');
        }
      })
      .finally(() => (conn.offlineProbe = false));
  }

  _onOnline() {
    if (this._stopped || this._conn || this._attempting) return;
    this._clearRetry();
    this._backoff.reset();
    this._attempt();
  }

  /** Closes a connection we gave up on, without waiting for its close handshake. */
  _drop(conn, reason) {
    if (conn.finished) return;
    try {
      conn.ws.close(4000, reason.slice(0, 120));
    } catch {
      // already closing
    }
    this._finish(conn, { code: 4000, reason, local: true });
  }

  /** The end of a connection, however it ended (once per connection). */
  _finish(conn, { code, reason }) {
    if (conn.finished) return;
    conn.finished = true;
    clearTimeout(conn.helloTimer);
    clearInterval(conn.heartbeat);
    clearTimeout(conn.closeTimer);
    clearTimeout(this._stableTimer);
    if (this._conn === conn) this._conn = null;
    const wasOpen = conn.helloed;

    // Unanswered commands: those safe to write again go back to the queue,
    // in their order; the rest fail, their outcome unknown.
    const unanswered = [...conn.inFlight.values()].sort((a, b) => a.order - b.order);
    conn.inFlight.clear();
    for (const cmd of unanswered.reverse()) {
      if (cmd.settled) continue;
      if (!cmd.conn && (cmd.isSend || cmd.retrySafe) && !this._stopped) {
        this._requeue(cmd);
      } else {
        this._settle(cmd, new SwitchboardError('disconnected', `the connection dropped before ${cmd.type} was answered`, { command: cmd.type, id: cmd.id }));
      }
    }
    for (let i = this._queue.length - 1; i >= 0; i--) {
      const cmd = this._queue[i];
      if (cmd.conn === conn) {
        this._queue.splice(i, 1);
        this._settle(cmd, new SwitchboardError('disconnected', `the connection dropped before ${cmd.type} was sent`, { command: cmd.type }));
      }
    }
    for (const id of this._streams.ids()) this._streams.setResuming(id, false);

    this.emit('disconnect', { code, reason: reason ?? '', wasOpen, error: conn.error });
    for (const resolve of this._closeWaiters.splice(0)) resolve();
    if (this._stopped) {
      this._setState('closed');
      return;
    }
    // Closed before hello: a refused upgrade (401) looks exactly like this in
    // a browser, so the next attempt asks for a fresh token.
    this._nextReason = wasOpen ? 'reconnect' : 'rejected';
    this._scheduleRetry();
  }

  // ---------------------------------------------------------------- frames

  _onMessage(conn, ev) {
    if (conn.finished) return;
    conn.lastFrameAt = Date.now();
    let frame;
    try {
      frame = JSON.parse(frameText(ev.data));
    } catch (err) {
      this.emit('error', new SwitchboardError('protocol', 'a frame from the host is not JSON', { cause: err }));
      return;
    }
    if (!frame || typeof frame !== 'object' || typeof frame.type !== 'string') return;
    switch (frame.type) {
      case 'hello':
        return this._onHello(conn, frame);
      case 'ack':
      case 'error':
        if (frame.id === null || frame.id === undefined) {
          // An error without id answers a frame the host could not read:
          // this client's bug, never a command's answer.
          this.emit('error', new SwitchboardError(frame.code ?? 'protocol', frame.message ?? 'error without id'));
          return;
        }
        return this._onAnswer(conn, frame);
      case 'resume':
        return this._onResume(conn, frame);
      default:
        return this._onEvent(conn, frame);
    }
  }

  _onHello(conn, hello) {
    if (conn.helloed) return;
    clearTimeout(conn.helloTimer);
    conn.helloed = true;
    this.userId = hello.user_id ?? null;
    this.sessionId = hello.session_id ?? null;
    this.limits = hello.limits ?? null;
    this._everOpen = true;
    this._stableTimer = unref(setTimeout(() => this._backoff.reset(), this.stableAfterMs));
    if (this.heartbeatMs > 0) {
      conn.heartbeat = unref(setInterval(() => this._heartbeat(conn), Math.max(500, this.heartbeatMs / 2)));
    }
    this._setState('open');
    this.emit('open', hello);
    this._opened.resolve(hello);
    this._sync(conn);
    this.typing.renewAll();
    this._pump();
  }

  /**
   * After every hello: learn the conversation list (new ones, epochs), then
   * resume every known position. App commands wait until this is done.
   */
  async _sync(conn) {
    let conversations = null;
    const added = [];
    // Gaps in known conversations are expected until their resume frame.
    for (const p of this._streams.subscribable()) this._streams.setResuming(p.conversation_id, true);
    try {
      if (this.syncConversations) {
        // New to the client: not known when the sync began (a live event
        // may make one known before the list comes).
        const known = new Set(this._streams.ids());
        conn.listing = true;
        try {
          conversations = await this._listAll({ conn, internal: true, front: true });
        } finally {
          conn.listing = false;
        }
        // A client that has followed your conversations before (a sync
        // done, or positions from its store) takes a conversation new to it
        // from its first event: you joined it while away, or before its
        // first event reached this client. A client's first sync takes
        // each at the list's snapshot, for the app to load with history.
        for (const c of conversations) {
          this._streams.learn(c.id, c.epoch, this._followed ? 0 : c.last_seq);
          if (!known.has(Number(c.id))) added.push(c.id);
        }
      }
      const positions = this._streams.subscribable({ epochKnownOnly: this.syncConversations });
      const resuming = new Set(positions.map((p) => p.conversation_id));
      for (const id of this._streams.ids()) this._streams.setResuming(id, resuming.has(id));
      // Each 100 positions cost one more rate token: chunks keep a burst free.
      for (let i = 0; i < positions.length; i += 500) {
        await this._command('subscribe', { positions: positions.slice(i, i + 500) }, { conn, internal: true, front: true, timeout: 0 });
      }
      conn.ready = true;
      this._followed = true;
      this.emit('synced', { conversations, added, resumed: positions.length });
    } catch (err) {
      if (conn.finished) return; // the next connection syncs again
      // Let the app's commands through, and try the resume again shortly:
      // events missed while away must still come.
      conn.ready = true;
      for (const id of this._streams.ids()) this._streams.setResuming(id, false);
      this.emit('error', err);
      conn.syncRetry ??= new Backoff({ initialMs: 1000, maxMs: 30000 });
      unref(setTimeout(() => {
        if (!conn.finished) this._sync(conn);
      }, 500 + conn.syncRetry.next()));
    }
    this._pump();
  }

  _heartbeat(conn) {
    if (conn.finished) return;
    const quiet = Date.now() - conn.lastFrameAt;
    if (quiet > this.heartbeatMs + (this.commandTimeoutMs || 15000)) {
      this._drop(conn, 'no frame from the host (heartbeat)');
    } else if (quiet >= this.heartbeatMs && !conn.pinging) {
      conn.pinging = true;
      this._command('ping', {}, { conn, internal: true })
        .catch(() => {})
        .finally(() => (conn.pinging = false));
    }
  }

  _onResume(conn, frame) {
    const id = frame.conversation_id;
    this.emit('resume', frame);
    if (frame.recovered) {
      this._streams.resumed(id, frame.epoch);
      if (this._streams.hasGap(id)) this._resubscribe(conn, id);
      return;
    }
    if (frame.reason === 'forbidden') {
      this._streams.remove(id);
      this.emit('resync', { conversation_id: id, reason: frame.reason, removed: true, epoch: null, last_seq: 0, events: [], more: false });
      return;
    }
    if (!frame.epoch) {
      // Not about the stream (storage unavailable, a replay already running):
      // try the same position again a little later.
      const delay = 500 + this._rateBackoff.next();
      unref(setTimeout(() => {
        if (conn.finished) return;
        this._streams.setResuming(id, false);
        this._resubscribe(conn, id);
      }, delay));
      return;
    }
    this._resync(conn, id, frame);
  }

  /** The gap cannot be filled: reload the newest events through history and tell the app. */
  async _resync(conn, id, frame) {
    this._streams.reloading(id); // hold live events meanwhile, whatever their seq
    try {
      const page = await this._command('history', { conversation_id: id, limit: this.resyncLimit }, { conn, internal: true, front: true });
      const events = Array.isArray(page.events) ? page.events : [];
      const upto = events.length ? events[events.length - 1].seq : page.last_seq;
      const deliverable = this._streams.reset(id, page.epoch, upto);
      this.emit('resync', {
        conversation_id: id,
        reason: frame.reason ?? 'not recovered',
        removed: false,
        epoch: page.epoch,
        last_seq: upto,
        events,
        more: !!page.more,
      });
      this._deliver(deliverable);
    } catch (err) {
      this._deliver(this._streams.reloadFailed(id));
      if (conn.finished) return; // resumed again (and so resynced) on the next connection
      if (err?.code === 'forbidden' || err?.code === 'not_found') {
        this._streams.remove(id);
        this.emit('resync', { conversation_id: id, reason: 'forbidden', removed: true, epoch: null, last_seq: 0, events: [], more: false });
      } else {
        this.emit('error', err);
      }
    }
  }

  /** Fills a gap of one conversation: subscribe with its position. */
  _resubscribe(conn, id) {
    if (conn.finished || this._streams.isResuming(id)) return;
    const p = this._streams.position(id);
    if (!p || p.seq === null) return;
    this._streams.setResuming(id, true);
    this._command('subscribe', { positions: [{ conversation_id: Number(id), epoch: p.epoch ?? '', seq: p.seq }] }, { conn, internal: true, timeout: 0 })
      .catch((err) => {
        if (conn.finished) return;
        this._streams.setResuming(id, false);
        this.emit('error', err);
      });
  }

  _onEvent(conn, ev) {
    if (!isPersistent(ev)) return this._emitEvent(ev);
    const id = ev.conversation_id;
    if (this._followed && !this._streams.knows(id) && !this._startsStream(ev)) {
      // A conversation new to a client that follows yours, seen first in
      // the middle: its earlier events are missing, take it from the start.
      this._streams.learn(id, null, 0);
      // While the sync's list is on its way it brings the epoch, and the
      // sync's subscribe fills the gap; afterwards the gap is filled below.
      if (conn.listing) this._streams.setResuming(id, true);
    }
    const { deliver, gap } = this._streams.offer(ev);
    this._deliver(deliver);
    if (gap) this._resubscribe(conn, ev.conversation_id);
  }

  /** True for an event a conversation's stream may start at: its creation, or your joining it. */
  _startsStream(ev) {
    return ev.type === 'conversation.create' || (ev.type === 'member.join' && ev.user_id === this.userId);
  }

  _deliver(events) {
    if (!events.length) return;
    const touched = new Set();
    for (const ev of events) {
      this._emitEvent(ev);
      touched.add(Number(ev.conversation_id));
      if (ev.type === 'member.leave' && ev.user_id === this.userId) {
        touched.delete(Number(ev.conversation_id));
        this._streams.remove(ev.conversation_id);
      }
    }
    for (const id of touched) this._streams.saved(id);
  }

  _emitEvent(ev) {
    this.emit(ev.type, ev);
    this.emit('event', ev);
  }

  // -------------------------------------------------------------- commands

  /**
   * Sends any command and resolves with its `result`.
   * @param {string} type  e.g. `conversation.get`, or a feature plugin's command
   * @param {object} [fields]  the command's fields (no `id`, no `type`)
   * @param {{timeout?: number}} [options]  timeout in ms (0: none); default commandTimeoutMs
   * @returns {Promise<any>}
   */
  command(type, fields = {}, options = {}) {
    return this._command(type, fields, { timeout: options.timeout });
  }

  _command(type, fields = {}, opts = {}) {
    return new Promise((resolve, reject) => {
      const cmd = {
        type,
        fields,
        resolve,
        reject,
        order: ++this._order,
        internal: !!opts.internal,
        conn: opts.conn ?? null,
        exclusive: EXCLUSIVE.has(type),
        retrySafe: RETRY_SAFE.has(type),
        isSend: type === 'message.send',
        id: null,
        settled: false,
        timer: null,
        sendRetry: null,
        internalErrors: 0,
      };
      if (this._closedByApp) {
        // (a client not yet connected queues its commands for the connection)
        return this._settle(cmd, new SwitchboardError('closed', 'the client is closed', { command: type }));
      }
      const timeout = opts.timeout ?? (cmd.isSend ? this.sendTimeoutMs : this.commandTimeoutMs);
      if (timeout > 0) {
        cmd.timer = setTimeout(() => this._expire(cmd, timeout), timeout);
      }
      if (opts.front) this._queue.unshift(cmd);
      else this._queue.push(cmd);
      this._pump();
    });
  }

  /** Puts a command back in the queue in its original order (ahead of later ones). */
  _requeue(cmd) {
    let i = 0;
    while (i < this._queue.length && (this._queue[i].internal || this._queue[i].order < cmd.order)) i++;
    this._queue.splice(i, 0, cmd);
  }

  _pump() {
    const conn = this._conn;
    if (!conn || !conn.helloed || conn.finished) return;
    const now = Date.now();
    const pacing = now < this._paceUntil;
    if (!pacing && this._paceUntil) {
      this._paceUntil = 0;
      this._rateBackoff.reset();
    }
    if (pacing && now < this._nextWriteAt) {
      if (!this._pumpTimer) {
        this._pumpTimer = setTimeout(() => {
          this._pumpTimer = null;
          this._pump();
        }, this._nextWriteAt - now);
      }
      return;
    }
    let i = 0;
    let budget = pacing ? 1 : Infinity; // paced: one write per interval
    while (budget > 0 && i < this._queue.length && conn.inFlight.size < this.maxInFlight && !conn.exclusive) {
      const cmd = this._queue[i];
      if (cmd.settled) {
        this._queue.splice(i, 1);
        continue;
      }
      if (cmd.conn && cmd.conn !== conn) {
        this._queue.splice(i, 1);
        this._settle(cmd, new SwitchboardError('disconnected', `the connection dropped before ${cmd.type} was sent`, { command: cmd.type }));
        continue;
      }
      if (!conn.ready && !cmd.internal) {
        i++; // app commands wait until the resume is under way
        continue;
      }
      if (cmd.isSend && this.orderedSends) {
        // The host runs pipelined commands concurrently and may store two
        // sends in either order: one send per conversation at a time keeps
        // a user's messages in the order they were sent.
        const cid = cmd.fields.conversation_id;
        const holder = this._sendHolder.get(cid);
        if (holder && holder !== cmd) {
          i++;
          continue;
        }
        this._sendHolder.set(cid, cmd);
      }
      // A history or subscribe runs alone: it waits for the others, and the
      // others (in order) wait for it.
      if (cmd.exclusive && conn.inFlight.size > 0) break;
      this._queue.splice(i, 1);
      cmd.paced = pacing;
      this._write(conn, cmd);
      budget -= 1;
    }
    if (pacing && budget === 0) {
      this._nextWriteAt = now + this._paceIntervalMs;
      if (this._queue.length && !this._pumpTimer) {
        this._pumpTimer = setTimeout(() => {
          this._pumpTimer = null;
          this._pump();
        }, this._paceIntervalMs);
      }
    }
  }

  _write(conn, cmd) {
    cmd.id = this._nextId++;
    const frame = JSON.stringify({ ...cmd.fields, id: cmd.id, type: cmd.type });
    try {
      conn.ws.send(frame);
    } catch (err) {
      this._requeue(cmd);
      this._drop(conn, `send failed: ${err?.message ?? err}`);
      return;
    }
    conn.inFlight.set(cmd.id, cmd);
    if (cmd.exclusive) conn.exclusive = true;
  }

  _onAnswer(conn, frame) {
    const cmd = conn.inFlight.get(frame.id);
    if (!cmd) return;
    conn.inFlight.delete(frame.id);
    if (cmd.exclusive) conn.exclusive = false;
    if (frame.type === 'ack') {
      this._rateBackoff.reset();
      this._settle(cmd, null, frame.result ?? {});
    } else {
      this._onCommandError(conn, cmd, frame);
    }
    this._pump();
  }

  _onCommandError(conn, cmd, frame) {
    if (cmd.settled) return;
    const code = typeof frame.code === 'string' ? frame.code : 'internal';
    const message = typeof frame.message === 'string' ? frame.message : code;
    if (code === 'rate_limited') {
      // Not run, so safe to write again. Pace the writes to the host's
      // refill rate (commands_per_second from hello) for a while, after a
      // jittered pause; refusals of commands written while already paced
      // lengthen the pause (answers to the burst before it do not).
      const now = Date.now();
      const cps = this.limits?.commands_per_second > 0 ? this.limits.commands_per_second : 10;
      if (now >= this._paceUntil) {
        this._paceIntervalMs = Math.ceil(1100 / cps);
        this._nextWriteAt = now + this._rateBackoff.next();
      } else if (cmd.paced) {
        this._paceIntervalMs = Math.min(5000, Math.ceil(this._paceIntervalMs * 1.5));
        this._nextWriteAt = Math.max(this._nextWriteAt, now + this._rateBackoff.next());
      }
      this._paceUntil = now + 5000;
      this._requeue(cmd);
      return;
    }
    const retrySend =
      cmd.isSend && (code === 'unavailable' || (code === 'internal' && ++cmd.internalErrors <= SEND_INTERNAL_RETRIES));
    if (retrySend) {
      // Safe: the same client_key never makes a second message.
      cmd.sendRetry ??= new Backoff({ initialMs: 500, maxMs: 10000 });
      unref(setTimeout(() => {
        if (cmd.settled) return;
        this._requeue(cmd);
        this._pump();
      }, 100 + cmd.sendRetry.next()));
      return;
    }
    this._settle(cmd, new SwitchboardError(code, message, { command: cmd.type, id: frame.id }));
  }

  _expire(cmd, timeout) {
    if (cmd.settled) return;
    const i = this._queue.indexOf(cmd);
    if (i >= 0) this._queue.splice(i, 1);
    // Left in flight if written: the host still runs it, and it still counts
    // against the 16; its late answer is dropped.
    this._settle(cmd, new SwitchboardError('timeout', `${cmd.type}: no answer within ${timeout} ms`, { command: cmd.type, id: cmd.id }));
  }

  _settle(cmd, err, result) {
    if (cmd.settled) return;
    cmd.settled = true;
    clearTimeout(cmd.timer);
    if (cmd.isSend && this._sendHolder.get(cmd.fields.conversation_id) === cmd) {
      this._sendHolder.delete(cmd.fields.conversation_id);
      if (this._conn) queueMicrotask(() => this._pump());
    }
    if (err) cmd.reject(err);
    else cmd.resolve(result);
  }

  _ephemeral(type, conversationId) {
    const conn = this._conn;
    if (!conn || !conn.helloed || conn.finished) return; // typing is never queued for later
    this._command(type, { conversation_id: Number(conversationId) }, { conn }).catch((err) => {
      if (!['closed', 'disconnected', 'timeout'].includes(err?.code)) this.emit('error', err);
    });
  }

  async _listAll(opts = {}) {
    const all = [];
    let after = 0;
    for (;;) {
      const page = await this._command('conversation.list', { after, limit: 1000 }, opts);
      const list = Array.isArray(page.conversations) ? page.conversations : [];
      all.push(...list);
      if (list.length < 1000) return all;
      after = list[list.length - 1].id;
    }
  }

  // ------------------------------------------------------------- messages

  /**
   * Sends a message. It gets a client key and is written again after every
   * reconnect (and after `unavailable`) until the host acknowledges it; the
   * host never stores it twice, and the app sees its `message.new` once.
   * Rejects on a refusal (`forbidden`, `too_large`, …), on close(), or after
   * `timeout` ms if given (default sendTimeoutMs, 0: never) — a send that
   * timed out may still have been stored: send again with the same clientKey.
   * @param {number} conversationId
   * @param {string} text
   * @param {{replyTo?: number, attachments?: object[], clientKey?: string, timeout?: number}} [options]
   * @returns {Promise<{message: object, seq: number, duplicate: boolean, client_key: string}> & {clientKey: string}}
   */
  send(conversationId, text, options = {}) {
    const clientKey = options.clientKey ?? newClientKey();
    const fields = { conversation_id: conversationId, client_key: clientKey };
    if (text !== undefined && text !== null) fields.text = text;
    if (options.replyTo !== undefined && options.replyTo !== null) fields.reply_to = options.replyTo;
    if (options.attachments) fields.attachments = options.attachments;
    if (this.typing.isTyping(conversationId)) this.typing.stop(conversationId);
    const p = this._command('message.send', fields, { timeout: options.timeout }).then((r) => ({ ...r, client_key: clientKey }));
    p.clientKey = clientKey;
    return p;
  }

  /** @param {number} messageId @param {string} text @returns {Promise<{message: object}>} */
  editMessage(messageId, text) {
    return this._command('message.edit', { message_id: messageId, text });
  }

  /** @param {number} messageId @returns {Promise<{message: object, changed: boolean}>} */
  deleteMessage(messageId) {
    return this._command('message.delete', { message_id: messageId });
  }

  // -------------------------------------------------------------- history

  /**
   * One page of a conversation's events, ascending by seq.
   * @param {number} conversationId
   * @param {{before?: number, after?: number, limit?: number, timeout?: number}} [options]
   * @returns {Promise<{events: object[], epoch: string, last_seq: number, more: boolean}>}
   */
  async history(conversationId, options = {}) {
    const fields = { conversation_id: conversationId };
    if (options.before !== undefined) fields.before = options.before;
    if (options.after !== undefined) fields.after = options.after;
    if (options.limit !== undefined) fields.limit = options.limit;
    const page = await this._command('history', fields, { timeout: options.timeout });
    if (options.before === undefined && options.after === undefined) {
      // The newest page is a snapshot: live events after it follow.
      this._streams.learn(conversationId, page.epoch, page.last_seq);
    }
    return page;
  }

  /**
   * Pages backwards from the newest (or from `before`): each page ascending,
   * pages newest first, until the beginning.
   * @param {number} conversationId
   * @param {{before?: number, limit?: number}} [options]
   * @returns {AsyncGenerator<{events: object[], epoch: string, last_seq: number, more: boolean}>}
   */
  async *historyPages(conversationId, options = {}) {
    let before = options.before;
    for (;;) {
      const page = await this.history(conversationId, { before, limit: options.limit });
      yield page;
      if (!page.more || page.events.length === 0) return;
      before = page.events[0].seq;
    }
  }

  // -------------------------------------------------------- conversations

  /** @param {{after?: number, limit?: number}} [options] @returns {Promise<{conversations: object[]}>} */
  listConversations(options = {}) {
    const fields = {};
    if (options.after !== undefined) fields.after = options.after;
    if (options.limit !== undefined) fields.limit = options.limit;
    return this._command('conversation.list', fields);
  }

  /** Every conversation of yours, all pages. @returns {Promise<object[]>} */
  listAllConversations() {
    return this._listAll();
  }

  /**
   * @param {{kind: 'direct'|'group'|'channel', name?: string, members?: string[]}} spec
   * @returns {Promise<{conversation: object, created: boolean}>}
   */
  async createConversation(spec) {
    const r = await this._command('conversation.create', spec);
    if (r.conversation) this._streams.learn(r.conversation.id, r.conversation.epoch, undefined);
    return r;
  }

  /** @param {number} conversationId @returns {Promise<{conversation: object, members: object[]}>} */
  async getConversation(conversationId) {
    const r = await this._command('conversation.get', { conversation_id: conversationId });
    if (r.conversation && this._streams.position(conversationId)) {
      this._streams.learn(conversationId, r.conversation.epoch, undefined);
    }
    return r;
  }

  /** Joins a channel. @param {number} conversationId @returns {Promise<{member: object, changed: boolean}>} */
  joinConversation(conversationId) {
    return this._command('conversation.join', { conversation_id: conversationId });
  }

  /** @param {number} conversationId @returns {Promise<{left: boolean}>} */
  leaveConversation(conversationId) {
    return this._command('conversation.leave', { conversation_id: conversationId });
  }

  // -------------------------------------------------------------- members

  /** @param {number} conversationId @param {string} userId @param {string} [role] @returns {Promise<{member: object}>} */
  addMember(conversationId, userId, role) {
    const fields = { conversation_id: conversationId, user_id: userId };
    if (role !== undefined) fields.role = role;
    return this._command('member.add', fields);
  }

  /** @param {number} conversationId @param {string} userId @returns {Promise<{removed: boolean}>} */
  removeMember(conversationId, userId) {
    return this._command('member.remove', { conversation_id: conversationId, user_id: userId });
  }

  /** @param {number} conversationId @param {string} userId @param {string} role @returns {Promise<{member: object, changed: boolean}>} */
  setMemberRole(conversationId, userId, role) {
    return this._command('member.role', { conversation_id: conversationId, user_id: userId, role });
  }

  // ------------------------------------------------- presence and features

  /** @param {number} conversationId @returns {Promise<{conversation_id: number, online: string[]}>} */
  presence(conversationId) {
    return this._command('presence', { conversation_id: conversationId });
  }

  /** @param {number} messageId @param {string} emoji @returns {Promise<{message_id: number, emoji: string, changed: boolean, seq?: number}>} */
  react(messageId, emoji) {
    return this._command('reaction.add', { message_id: messageId, emoji });
  }

  /** @param {number} messageId @param {string} emoji @returns {Promise<{message_id: number, emoji: string, changed: boolean, seq?: number}>} */
  unreact(messageId, emoji) {
    return this._command('reaction.remove', { message_id: messageId, emoji });
  }

  /** @param {number} messageId @returns {Promise<{message_id: number, changed: boolean, seq?: number}>} */
  pin(messageId) {
    return this._command('pin.add', { message_id: messageId });
  }

  /** @param {number} messageId @returns {Promise<{message_id: number, changed: boolean, seq?: number}>} */
  unpin(messageId) {
    return this._command('pin.remove', { message_id: messageId });
  }

  /** @param {number} conversationId @returns {Promise<{pins: object[]}>} */
  pins(conversationId) {
    return this._command('pins', { conversation_id: conversationId });
  }

  /**
   * Marks a conversation read up to `seq`.
   * @param {number} conversationId @param {number} seq
   * @returns {Promise<{conversation_id: number, seq: number, unread: number, changed: boolean}>}
   */
  markRead(conversationId, seq) {
    return this._command('read', { conversation_id: conversationId, seq });
  }

  /** @returns {Promise<{conversations: {conversation_id: number, read_seq: number, unread: number}[]}>} */
  unread() {
    return this._command('unread', {});
  }

  /** A round trip to the host. @returns {Promise<{}>} */
  ping() {
    return this._command('ping', {});
  }
}
