/**
 * Exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff And Jitter"): the n-th delay is uniform in [0, min(max, initial·factorⁿ)).
 * Spreading reconnects uniformly keeps a fleet of clients from reconnecting in
 * step after a host restart.
 * @module
 */

export class Backoff {
  /**
   * @param {object} [options]
   * @param {number} [options.initialMs=500]  ceiling of the first delay
   * @param {number} [options.maxMs=30000]    cap of every ceiling
   * @param {number} [options.factor=2]       growth of the ceiling per attempt
   * @param {() => number} [options.random=Math.random]  uniform in [0, 1)
   */
  constructor({ initialMs = 500, maxMs = 30000, factor = 2, random = Math.random } = {}) {
    if (!(initialMs > 0) || !(maxMs >= initialMs) || !(factor >= 1)) {
      throw new RangeError('Backoff: need initialMs > 0, maxMs >= initialMs, factor >= 1');
    }
    this.initialMs = initialMs;
    this.maxMs = maxMs;
    this.factor = factor;
    this.random = random;
    this._attempts = 0;
  }

  /** How many delays were handed out since the last reset. */
  get attempts() {
    return this._attempts;
  }

  /** The ceiling the next delay is drawn below. */
  get ceiling() {
    return Math.min(this.maxMs, this.initialMs * this.factor ** this._attempts);
  }

  /** The next delay in milliseconds, uniform in [0, ceiling); grows the ceiling. */
  next() {
    const ceiling = this.ceiling;
    this._attempts += 1;
    return Math.floor(this.random() * ceiling);
  }

  /** Back to the first, shortest ceiling (after a stable connection). */
  reset() {
    this._attempts = 0;
  }
}
