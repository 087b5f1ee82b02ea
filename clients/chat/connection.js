/**
 * Tokens, for the page.
 *
 * Tokens: with `[auth] dev_tokens = true` the host mints one at
 * `POST /dev/token` for any user id (loopback listeners only); otherwise
 * the user pastes one (or opens the page with `#token=`).

 * @module
 */

/** Whether this host mints development tokens (an empty request answers 400 then, else 401/404). */
export async function devTokensAvailable() {
  try {
    const r = await fetch('/dev/token', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    return r.status === 400 || r.ok;
  } catch {
    return false;
  }
}

/** A token for `userId` from `POST /dev/token`: `{token, user_id, expires_at}`. */
export async function fetchDevToken(userId) {
  const r = await fetch('/dev/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user_id: userId }),
  });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body?.error?.message ?? `POST /dev/token answered ${r.status}`);
  return body;
}

/**
 * The client's getToken for a development user: a token is kept until a
 * minute before it expires, and fetched afresh after a refusal.
 */
export function devTokenSource(userId) {
  let cached = null;
  return async ({ reason }) => {
    if (!cached || reason === 'rejected' || cached.expires_at - Date.now() < 60_000) cached = await fetchDevToken(userId);
    return cached.token;
  };
}

/** The `sub` of a JWT (not verified: only to show who you will be). */
export function tokenSubject(token) {
  try {
    const part = token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), (ch) => ch.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes)).sub ?? null;
  } catch {
    return null;
  }
}

/** The WebSocket endpoint of the host that served this page. */
export function wsUrl(loc = location) {
  return `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/ws`;
}
