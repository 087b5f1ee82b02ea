// Required test 3: the token callback is called before every connection
// attempt — the first, each reconnect — and again after a refused upgrade
// (401), which a browser only shows as "closed before hello".
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Host, makeClient, mintToken, nextEvent, waitFor } from '../test-support/host.js';

test('token refresh: called before each reconnect and again after a 401', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());

  const log = []; // token callback calls and connection events, in order
  const tokens = [
    () => mintToken('carol', { secret: 'not-the-host-secret-0123456789' }), // wrongly signed: 401
    () => mintToken('carol', { exp: Math.floor(Date.now() / 1000) - 120 }), // expired: 401
  ];
  for (let i = 0; i < 50; i++) tokens.push(() => mintToken('carol'));
  const client = makeClient(host, 'carol', {
    getToken: async ({ reason, attempt }) => {
      log.push(`token:${reason}`);
      assert.equal(attempt, log.filter((l) => l.startsWith('token:')).length);
      return tokens.shift()();
    },
  });
  t.after(() => client.close());
  client.on('open', () => log.push('open'));
  client.on('disconnect', (d) => log.push(d.wasOpen ? 'dropped' : 'refused'));

  const hello = await client.connect();
  assert.equal(hello.user_id, 'carol');
  assert.deepEqual(log, ['token:connect', 'refused', 'token:rejected', 'refused', 'token:rejected', 'open']);
  assert.equal(client.state, 'open');

  // A reconnect asks for a token again, before connecting.
  await host.kill();
  await host.restart();
  await waitFor(() => client.state === 'open' && log.at(-1) === 'open' && log.length > 6, { message: 'reconnected' });
  // dropped, token:reconnect, then (if an attempt hit the host while it was
  // down) refused + token:rejected pairs, then open.
  const after = log.slice(6);
  assert.deepEqual(after.slice(0, 2), ['dropped', 'token:reconnect'], after.join(' '));
  assert.equal(after.at(-1), 'open');
  const middle = after.slice(2, -1);
  for (let i = 0; i < middle.length; i += 2) assert.deepEqual(middle.slice(i, i + 2), ['refused', 'token:rejected'], after.join(' '));
  assert.equal(tokens.length, 50 - 2 - middle.length / 2, 'every attempt took a fresh token');
});

test('a static token is reused; a throwing token callback is reported and retried', async (t) => {
  const host = await Host.start();
  t.after(() => host.stop());
  let calls = 0;
  const client = makeClient(host, 'dave', {
    getToken: () => {
      calls += 1;
      if (calls === 1) throw new Error('identity provider down');
      return mintToken('dave');
    },
  });
  t.after(() => client.close());
  const error = nextEvent(client, 'error');
  const hello = client.connect();
  assert.equal((await error).code, 'token');
  assert.equal((await hello).user_id, 'dave');
  assert.equal(calls, 2);
});
