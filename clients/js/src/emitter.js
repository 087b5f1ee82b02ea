/**
 * A small typed event emitter that runs in browsers and Node alike.
 * A listener that throws does not break the emitter: the exception is
 * rethrown asynchronously (so it shows as an uncaught error), and the other
 * listeners still run.
 * @module
 */

export class Emitter {
  constructor() {
    /** @type {Map<string, Set<Function>>} */
    this._listeners = new Map();
  }

  /**
   * Adds a listener; returns a function that removes it.
   * @param {string} type
   * @param {Function} fn
   * @returns {() => void}
   */
  on(type, fn) {
    if (typeof fn !== 'function') throw new TypeError('listener must be a function');
    let set = this._listeners.get(type);
    if (!set) this._listeners.set(type, (set = new Set()));
    set.add(fn);
    return () => this.off(type, fn);
  }

  /**
   * Adds a listener called at most once.
   * @param {string} type
   * @param {Function} fn
   * @returns {() => void}
   */
  once(type, fn) {
    const off = this.on(type, (...args) => {
      off();
      fn(...args);
    });
    return off;
  }

  /**
   * Removes a listener (added with on or once — for once, use the function on() returned).
   * @param {string} type
   * @param {Function} fn
   */
  off(type, fn) {
    const set = this._listeners.get(type);
    if (set) {
      set.delete(fn);
      if (set.size === 0) this._listeners.delete(type);
    }
  }

  /** @protected */
  emit(type, ...args) {
    const set = this._listeners.get(type);
    if (!set) return;
    for (const fn of [...set]) {
      try {
        fn(...args);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** @protected */
  listenerCount(type) {
    return this._listeners.get(type)?.size ?? 0;
  }
}
