/**
 * Online/offline awareness. In a browser the client listens to `window`'s
 * `online` and `offline` events: while offline it stops retrying, and on
 * `online` it reconnects at once. Elsewhere (Node) there is no such source
 * and the network counts as always online — unless one is passed in.
 * @module
 */

/** `window` when it can dispatch `online`/`offline`, else null. */
export function defaultNetwork() {
  const w = globalThis.window;
  return w && typeof w.addEventListener === 'function' ? w : null;
}

export class NetworkWatch {
  /**
   * @param {EventTarget|null} target  dispatches `online` and `offline`; may have a boolean `onLine`
   * @param {{onOnline: () => void, onOffline: () => void}} handlers
   */
  constructor(target, { onOnline, onOffline }) {
    this.target = target;
    this._onOnline = () => {
      this._online = true;
      onOnline();
    };
    this._onOffline = () => {
      this._online = false;
      onOffline();
    };
    this._online = null;
    this._attached = false;
  }

  /** Whether the network is believed to be up. */
  get online() {
    if (this._online !== null) return this._online;
    if (!this.target) return true;
    if (typeof this.target.onLine === 'boolean') return this.target.onLine;
    return globalThis.navigator?.onLine !== false;
  }

  attach() {
    if (this._attached || !this.target) return;
    this._attached = true;
    this._online = null; // read it afresh from the source
    this.target.addEventListener('online', this._onOnline);
    this.target.addEventListener('offline', this._onOffline);
  }

  detach() {
    if (!this._attached) return;
    this._attached = false;
    this.target.removeEventListener('online', this._onOnline);
    this.target.removeEventListener('offline', this._onOffline);
  }
}
