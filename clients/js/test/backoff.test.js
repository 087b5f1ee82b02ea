// Backoff: full jitter bounds, the cap, and the reset (pure, no host).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Backoff } from '../index.js';

test('full jitter: each delay is uniform in [0, min(cap, initial·2ⁿ))', () => {
  const b = new Backoff({ initialMs: 100, maxMs: 10000 });
  const ceilings = [];
  for (let n = 0; n < 12; n++) {
    const ceiling = b.ceiling;
    ceilings.push(ceiling);
    const d = b.next();
    assert.ok(d >= 0 && d < ceiling, `delay ${d} outside [0, ${ceiling})`);
  }
  assert.deepEqual(ceilings.slice(0, 8), [100, 200, 400, 800, 1600, 3200, 6400, 10000]);
  assert.ok(ceilings.slice(7).every((c) => c === 10000), 'the ceiling stays at the cap');
});

test('the extremes of the random source give 0 and just under the ceiling', () => {
  const low = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0 });
  assert.deepEqual([low.next(), low.next(), low.next()], [0, 0, 0]);
  const high = new Backoff({ initialMs: 100, maxMs: 1000, random: () => 0.999999 });
  assert.deepEqual([high.next(), high.next(), high.next(), high.next(), high.next(), high.next()], [99, 199, 399, 799, 999, 999]);
});

test('jitter spreads: many draws at one ceiling cover its range', () => {
  const draws = [];
  for (let i = 0; i < 2000; i++) {
    const b = new Backoff({ initialMs: 1000, maxMs: 1000 });
    draws.push(b.next());
  }
  const min = Math.min(...draws);
  const max = Math.max(...draws);
  assert.ok(min < 50 && max > 950 && max < 1000, `draws span [${min}, ${max}]`);
  const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
  assert.ok(mean > 430 && mean < 570, `mean ${mean} should be near 500`);
});

test('reset goes back to the first ceiling', () => {
  const b = new Backoff({ initialMs: 50, maxMs: 5000, random: () => 0.5 });
  for (let i = 0; i < 6; i++) b.next();
  assert.equal(b.attempts, 6);
  assert.equal(b.ceiling, 3200);
  b.reset();
  assert.equal(b.attempts, 0);
  assert.equal(b.ceiling, 50);
  assert.equal(b.next(), 25);
});

test('bad parameters are refused', () => {
  assert.throws(() => new Backoff({ initialMs: 0 }), RangeError);
  assert.throws(() => new Backoff({ initialMs: 100, maxMs: 50 }), RangeError);
  assert.throws(() => new Backoff({ factor: 0.5 }), RangeError);
});
