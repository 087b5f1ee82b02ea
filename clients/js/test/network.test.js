// Online/offline awareness (a browser's window events, passed in as
// options.network): no retries while offline, reconnect at once on online.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Host, makeClient, mintToken, waitFor } from '../test-support/host.js';

test('offline stops retries; online reconnects at once, skipping the backoff', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());
  const network = new EventTarget();
  network.onLine = true;
  let tokenCalls = 0;
  const states = [];
  // A backoff this long would keep the client away for many seconds:
  // only the online event can bring it back within the test's deadline.
  const client = makeClient(host, 'erin', {
    network,
    backoff: { initialMs: 60000, maxMs: 60000, random: () => 0.99 },
    getToken: () => {
      tokenCalls += 1;
      return mintToken('erin');
    },
  });
  t.after(() => client.close());
  client.on('state', (s) => states.push(s));
  await client.connect();

  network.onLine = false;
  network.dispatchEvent(new Event('offline'));
  assert.equal(client.state, 'open', 'an open connection stays open while the browser says offline');
  await host.kill();
  await waitFor(() => client.state === 'offline', { message: 'offline after the drop' });
  await host.restart();
  const callsWhileOffline = tokenCalls;
  // Nothing is attempted while offline (the backoff alone would wait 59 s
  // anyway, so check the state machine: no retry scheduled).
  assert.equal(client._retryTimer, null, 'no retry scheduled while offline');

  network.onLine = true;
  const started = Date.now();
  network.dispatchEvent(new Event('online'));
  await waitFor(() => client.state === 'open', { timeout: 5000, message: 'open again on online' });
  assert.ok(Date.now() - started < 5000);
  assert.equal(tokenCalls, callsWhileOffline + 1);
  assert.deepEqual(states.slice(-3), ['offline', 'reconnecting', 'open']);
  assert.deepEqual(await client.ping(), {});
});

test('reconnect() skips the wait on demand ("retry now")', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());
  const client = makeClient(host, 'frank', { backoff: { initialMs: 60000, maxMs: 60000, random: () => 0.99 } });
  t.after(() => client.close());
  await client.connect();
  const retry = new Promise((r) => client.once('retry', r));
  await host.kill();
  const { delayMs } = await retry;
  assert.ok(delayMs > 50000);
  await host.restart();
  client.reconnect();
  await waitFor(() => client.state === 'open', { timeout: 5000, message: 'open after reconnect()' });
});
