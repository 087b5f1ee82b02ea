/**
 * Typing indicators, sent the way the host expects (docs/protocol.md,
 * "Typing"): `typing.start` renewed every few seconds while the user types
 * (the host ends a start not renewed within its timeout, 6 s by default),
 * `typing.stop` when they stop.
 *
 * Two ways to drive it:
 * - `keystroke(id)` on every input event: starts, keeps renewing while
 *   keystrokes come, and stops by itself `idleMs` after the last one;
 * - `start(id)` / `stop(id)`: renews until told to stop.
 * @module
 */

export class TypingNotifier {
  /**
   * @param {object} options
   * @param {(type: 'typing.start'|'typing.stop', conversationId: number) => void} options.send
   *   sends the command (fire and forget; failures are the sender's to report)
   * @param {number} [options.renewMs=3000]  how often a start is renewed
   * @param {number} [options.idleMs=5000]   keystroke(): stop after this long without one
   */
  constructor({ send, renewMs = 3000, idleMs = 5000 }) {
    this._send = send;
    this.renewMs = renewMs;
    this.idleMs = idleMs;
    /** @type {Map<number, {renew: any, idle: any}>} */
    this._active = new Map();
  }

  /**
   * Call on each keystroke in a conversation's composer.
   * @param {number} conversationId
   */
  keystroke(conversationId) {
    const t = this._begin(conversationId);
    if (t.idle) clearTimeout(t.idle);
    t.idle = setTimeout(() => this.stop(conversationId), this.idleMs);
    t.idle?.unref?.();
  }

  /**
   * Starts typing and renews it until stop().
   * @param {number} conversationId
   */
  start(conversationId) {
    const t = this._begin(conversationId);
    if (t.idle) clearTimeout(t.idle);
    t.idle = null;
  }

  /**
   * Stops typing (sends typing.stop if a start was sent).
   * @param {number} conversationId
   */
  stop(conversationId) {
    const id = Number(conversationId);
    const t = this._active.get(id);
    if (!t) return;
    this._clear(t);
    this._active.delete(id);
    this._send('typing.stop', id);
  }

  /** Stops every conversation; with `{send: false}` only forgets (e.g. on close). */
  stopAll({ send = true } = {}) {
    for (const [id, t] of [...this._active]) {
      this._clear(t);
      this._active.delete(id);
      if (send) this._send('typing.stop', id);
    }
  }

  /** @param {number} conversationId @returns {boolean} */
  isTyping(conversationId) {
    return this._active.has(Number(conversationId));
  }

  /** Sends a start for every active conversation now (after a reconnect). */
  renewAll() {
    for (const id of this._active.keys()) this._send('typing.start', id);
  }

  _begin(conversationId) {
    const id = Number(conversationId);
    let t = this._active.get(id);
    if (!t) {
      t = { renew: null, idle: null };
      this._active.set(id, t);
      this._send('typing.start', id);
      t.renew = setInterval(() => this._send('typing.start', id), this.renewMs);
      // Never keep a Node process alive just to say "typing".
      t.renew?.unref?.();
    }
    return t;
  }

  _clear(t) {
    if (t.renew) clearInterval(t.renew);
    if (t.idle) clearTimeout(t.idle);
    t.renew = t.idle = null;
  }
}
