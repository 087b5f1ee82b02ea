/**
 * Client keys for `message.send` (docs/protocol.md: "Give every send a
 * client_key"): random, unique per send, well under the 128-byte limit.
 * @module
 */

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A new random client key (32 hex digits, 128 bits).
 * Uses `crypto.getRandomValues`, which browsers offer on plain http pages too
 * (unlike `crypto.randomUUID`).
 * @returns {string}
 */
export function newClientKey() {
  const bytes = new Uint8Array(16);
  const c = globalThis.crypto;
  if (c && typeof c.getRandomValues === 'function') {
    c.getRandomValues(bytes);
  } else {
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  }
  let s = '';
  for (const b of bytes) s += HEX[b];
  return s;
}
