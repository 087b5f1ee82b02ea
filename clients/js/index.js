/**
 * @switchboard/client — the JavaScript client for Switchboard.
 * Runs in browsers (global WebSocket) and in Node (pass the `ws` package as
 * options.WebSocket). No runtime dependencies. Guide: docs/clients.md.
 * @module
 */
export { SwitchboardClient } from './src/client.js';
export { SwitchboardError, isSwitchboardError, SERVER_CODES, CLIENT_CODES } from './src/errors.js';
export { Backoff } from './src/backoff.js';
export { MemoryPositionStore, LocalStoragePositionStore } from './src/positions.js';
export { TypingNotifier } from './src/typing.js';
export { newClientKey } from './src/keys.js';
export { isPersistent, EPHEMERAL_TYPES } from './src/streams.js';
