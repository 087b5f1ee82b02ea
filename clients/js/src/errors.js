/**
 * Typed errors. Every rejected command promise rejects with a
 * {@link SwitchboardError}; its `code` is either one of the protocol's stable
 * codes (docs/protocol.md, "Commands and answers") or one of the client-side
 * codes below.
 * @module
 */

/** Codes the host answers with (docs/protocol.md). */
export const SERVER_CODES = Object.freeze([
  'bad_request',
  'unknown_type',
  'forbidden',
  'not_found',
  'conflict',
  'too_large',
  'limit_reached',
  'rate_limited',
  'unavailable',
  'internal',
]);

/** Codes the client produces itself. */
export const CLIENT_CODES = Object.freeze([
  /** The command got no answer within its timeout. */
  'timeout',
  /** The client was closed (close()) before the command was answered. */
  'closed',
  /** The connection dropped after the command was written and the command is
   *  not safe to run twice: its outcome is unknown. */
  'disconnected',
  /** The token callback threw or returned no token. */
  'token',
  /** A frame from the host could not be understood. */
  'protocol',
]);

/**
 * An error with a stable `code`.
 */
export class SwitchboardError extends Error {
  /**
   * @param {string} code  a protocol code (`forbidden`, …) or a client code (`timeout`, …)
   * @param {string} message  a human message (the host's, for protocol codes)
   * @param {{command?: string, id?: string|number|null, cause?: unknown}} [details]
   */
  constructor(code, message, details = {}) {
    super(message, details.cause !== undefined ? { cause: details.cause } : undefined);
    this.name = 'SwitchboardError';
    /** @type {string} */
    this.code = code;
    /** @type {string|undefined} the command type that failed, when there is one */
    this.command = details.command;
    /** @type {string|number|null|undefined} the command's id on the wire */
    this.id = details.id;
  }

  /** True for the codes the host answers with, false for client-side ones. */
  get fromServer() {
    return SERVER_CODES.includes(this.code);
  }
}

/**
 * True when `err` is a SwitchboardError, optionally with the given code.
 * @param {unknown} err
 * @param {string} [code]
 * @returns {err is SwitchboardError}
 */
export function isSwitchboardError(err, code) {
  return err instanceof SwitchboardError && (code === undefined || err.code === code);
}
