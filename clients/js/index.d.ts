// Type declarations for @switchboard/client (hand-written; the sources are
// plain JavaScript, no build step). Guide: docs/clients.md. Wire format:
// docs/protocol.md.

// ------------------------------------------------------------------ errors

/** Codes the host answers with (docs/protocol.md). */
export type ServerErrorCode =
  | 'bad_request'
  | 'unknown_type'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'too_large'
  | 'limit_reached'
  | 'rate_limited'
  | 'unavailable'
  | 'internal';

/**
 * Codes the client produces itself:
 * - `timeout`: no answer within the command's timeout;
 * - `closed`: the client was closed before the answer;
 * - `disconnected`: the connection dropped with the answer outstanding and the
 *   command is not safe to write twice (its outcome is unknown);
 * - `token`: the token callback threw or returned nothing (an `error` event);
 * - `protocol`: a frame from the host could not be understood (an `error` event).
 */
export type ClientErrorCode = 'timeout' | 'closed' | 'disconnected' | 'token' | 'protocol';

export type ErrorCode = ServerErrorCode | ClientErrorCode;

export const SERVER_CODES: readonly ServerErrorCode[];
export const CLIENT_CODES: readonly ClientErrorCode[];

export class SwitchboardError extends Error {
  constructor(code: ErrorCode | string, message: string, details?: { command?: string; id?: string | number | null; cause?: unknown });
  readonly name: 'SwitchboardError';
  /** A protocol code (`forbidden`, …) or a client code (`timeout`, …). */
  readonly code: ErrorCode | string;
  /** The command type that failed, when there is one. */
  readonly command?: string;
  /** The command's id on the wire. */
  readonly id?: string | number | null;
  /** True for codes the host answers with. */
  readonly fromServer: boolean;
}

export function isSwitchboardError(err: unknown, code?: ErrorCode | string): err is SwitchboardError;

// ------------------------------------------------------------------ values

export type ConversationKind = 'direct' | 'group' | 'channel';
export type Role = 'member' | 'admin' | 'owner';

export interface Conversation {
  id: number;
  kind: ConversationKind;
  name: string;
  creator: string;
  epoch: string;
  last_seq: number;
  created_at: number;
}

export interface Member {
  user_id: string;
  role: Role;
  joined_at: number;
  conversation_id?: number;
}

export interface Attachment {
  file_name: string;
  mime_type: string;
  size: number;
  url: string;
  thumbnail_url?: string;
  width?: number;
  height?: number;
  duration_ms?: number;
}

export interface Message {
  id: number;
  conversation_id: number;
  seq: number;
  author: string;
  text: string;
  reply_to?: number;
  attachments: Attachment[];
  created_at: number;
  edited_at?: number;
  deleted?: boolean;
  /** In history: feature-reactions' decoration, emoji -> user ids. */
  reactions?: Record<string, string[]>;
  /** In history: feature-pins' decoration. */
  pinned?: { message_id: number; pinned_by: string; pinned_at: number };
  /** Only in your own send's ack. */
  client_key?: string;
  [decoration: string]: unknown;
}

/** Fields every persistent event carries. */
export interface PersistentEventBase {
  conversation_id: number;
  seq: number;
  actor: string;
  at: number;
}

export interface ConversationCreateEvent extends PersistentEventBase {
  type: 'conversation.create';
  members: string[];
  kind: ConversationKind;
  name: string;
}
export interface MemberJoinEvent extends PersistentEventBase {
  type: 'member.join';
  user_id: string;
  role: Role;
}
export interface MemberLeaveEvent extends PersistentEventBase {
  type: 'member.leave';
  user_id: string;
}
export interface MemberRoleEvent extends PersistentEventBase {
  type: 'member.role';
  user_id: string;
  role: Role;
}
export interface MessageNewEvent extends PersistentEventBase {
  type: 'message.new';
  message: Message;
}
export interface MessageEditEvent extends PersistentEventBase {
  type: 'message.edit';
  message: Message;
}
export interface MessageDeleteEvent extends PersistentEventBase {
  type: 'message.delete';
  message: Message;
}
export interface ReactionEvent extends PersistentEventBase {
  type: 'reaction.add' | 'reaction.remove';
  message_id: number;
  emoji: string;
  user_id: string;
}
export interface PinEvent extends PersistentEventBase {
  type: 'pin.add' | 'pin.remove';
  message_id: number;
  pinned_by: string;
  reason?: string;
}

/** Ephemeral events: no stream position, never replayed. */
export interface PresenceUpdateEvent {
  type: 'presence.update';
  conversation_id: number;
  user_id: string;
  status: 'online' | 'offline';
}
export interface TypingEvent {
  type: 'typing.start' | 'typing.stop';
  conversation_id: number;
  user_id: string;
}
export interface ReceiptUpdateEvent {
  type: 'receipt.update';
  conversation_id: number;
  user_id: string;
  /** The reader's read position, not a stream position. */
  seq: number;
}
export interface UnreadUpdateEvent {
  type: 'unread.update';
  conversation_id: number;
  unread: number;
  last_seq: number;
}

export type PersistentEvent =
  | ConversationCreateEvent
  | MemberJoinEvent
  | MemberLeaveEvent
  | MemberRoleEvent
  | MessageNewEvent
  | MessageEditEvent
  | MessageDeleteEvent
  | ReactionEvent
  | PinEvent;
export type EphemeralEvent = PresenceUpdateEvent | TypingEvent | ReceiptUpdateEvent | UnreadUpdateEvent;
/** Any event; a feature plugin may add types of its own. */
export type SwitchboardEvent = PersistentEvent | EphemeralEvent | ({ type: string; conversation_id?: number; [k: string]: unknown });

export interface Hello {
  type: 'hello';
  user_id: string;
  session_id: number;
  conversations: number;
  limits: {
    max_frame_bytes: number;
    max_text_bytes: number;
    commands_per_second: number;
    resume_window: number;
    history_max: number;
    command_burst?: number;
  };
}

export interface ResumeFrame {
  type: 'resume';
  conversation_id: number;
  recovered: boolean;
  epoch: string;
  last_seq: number;
  reason?: string;
}

export interface HistoryPage {
  events: PersistentEvent[];
  epoch: string;
  last_seq: number;
  more: boolean;
}

export interface SendResult {
  message: Message;
  seq: number;
  /** True when an earlier write of the same client key had been stored: this is the original. */
  duplicate: boolean;
  client_key: string;
}

// ------------------------------------------------------------------ events

export type ConnectionState = 'connecting' | 'open' | 'reconnecting' | 'offline' | 'closed';

/** Why the token callback is being asked. */
export type TokenReason =
  /** the first attempt after connect() */
  | 'connect'
  /** a connection that was open dropped */
  | 'reconnect'
  /** the previous attempt closed before hello: the token may have been refused (401), or the host was unreachable */
  | 'rejected';

export interface ResyncEvent {
  conversation_id: number;
  /** The host's reason (`gap larger than the resume window`, `epoch changed`, `position is ahead of the stream`, `forbidden`). */
  reason: string;
  /** True when you are no longer a member: drop the conversation. */
  removed: boolean;
  epoch: string | null;
  /** The position the client now stands at (the last event of `events`). */
  last_seq: number;
  /** The newest events (up to resyncLimit), ascending: replace your view of the conversation with them. */
  events: PersistentEvent[];
  /** Older events exist: page them with history({before}) or historyPages(). */
  more: boolean;
}

export interface SyncedEvent {
  /** Your conversations (null with syncConversations: false). */
  conversations: Conversation[] | null;
  /** Conversations the client had no position for (new to it). */
  added: number[];
  /** How many positions were resumed. */
  resumed: number;
}

export interface DisconnectEvent {
  code: number;
  reason: string;
  /** False when the connection closed before hello (a refused token looks like this). */
  wasOpen: boolean;
  /** The WebSocket error's message, when there was one (in Node: e.g. "Unexpected server response: 401"). */
  error: string | null;
}

export interface ClientEventMap {
  state: [state: ConnectionState, previous: ConnectionState];
  open: [hello: Hello];
  disconnect: [info: DisconnectEvent];
  retry: [info: { delayMs: number; attempt: number; reason: TokenReason }];
  synced: [info: SyncedEvent];
  resume: [frame: ResumeFrame];
  resync: [info: ResyncEvent];
  error: [error: SwitchboardError];
  /** Every event, after dedupe (persistent ones exactly once, in seq order per conversation). */
  event: [event: SwitchboardEvent];
  'conversation.create': [event: ConversationCreateEvent];
  'member.join': [event: MemberJoinEvent];
  'member.leave': [event: MemberLeaveEvent];
  'member.role': [event: MemberRoleEvent];
  'message.new': [event: MessageNewEvent];
  'message.edit': [event: MessageEditEvent];
  'message.delete': [event: MessageDeleteEvent];
  'reaction.add': [event: ReactionEvent];
  'reaction.remove': [event: ReactionEvent];
  'pin.add': [event: PinEvent];
  'pin.remove': [event: PinEvent];
  'presence.update': [event: PresenceUpdateEvent];
  'typing.start': [event: TypingEvent];
  'typing.stop': [event: TypingEvent];
  'receipt.update': [event: ReceiptUpdateEvent];
  'unread.update': [event: UnreadUpdateEvent];
}

// ---------------------------------------------------------------- backoff

export interface BackoffOptions {
  /** Ceiling of the first delay (default 500). */
  initialMs?: number;
  /** Cap of every ceiling (default 30000). */
  maxMs?: number;
  /** Growth per attempt (default 2). */
  factor?: number;
  /** Uniform in [0, 1) (default Math.random). */
  random?: () => number;
}

/** Exponential backoff with full jitter: the n-th delay is uniform in [0, min(maxMs, initialMs·factorⁿ)). */
export class Backoff {
  constructor(options?: BackoffOptions);
  readonly initialMs: number;
  readonly maxMs: number;
  readonly factor: number;
  readonly attempts: number;
  readonly ceiling: number;
  next(): number;
  reset(): void;
}

// -------------------------------------------------------------- positions

export interface Position {
  epoch: string | null;
  seq: number | null;
}

/** Where the client keeps each conversation's delivered position. Methods may be async. */
export interface PositionStore {
  load(): Record<string, Position> | Promise<Record<string, Position>>;
  set(conversationId: number, position: Position): void | Promise<void>;
  delete(conversationId: number): void | Promise<void>;
}

export class MemoryPositionStore implements PositionStore {
  load(): Record<string, Position>;
  set(conversationId: number, position: Position): void;
  delete(conversationId: number): void;
}

export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export class LocalStoragePositionStore implements PositionStore {
  constructor(options?: { key?: string; storage?: StorageLike });
  readonly key: string;
  load(): Record<string, Position>;
  set(conversationId: number, position: Position): void;
  delete(conversationId: number): void;
  /** Forgets every position (e.g. on logout). */
  clear(): void;
}

// ----------------------------------------------------------------- typing

export class TypingNotifier {
  constructor(options: {
    send: (type: 'typing.start' | 'typing.stop', conversationId: number) => void;
    renewMs?: number;
    idleMs?: number;
  });
  renewMs: number;
  idleMs: number;
  /** Call on every keystroke: starts, renews while keystrokes come, stops idleMs after the last. */
  keystroke(conversationId: number): void;
  /** Starts and renews until stop(). */
  start(conversationId: number): void;
  /** Sends typing.stop if a start was sent. */
  stop(conversationId: number): void;
  stopAll(options?: { send?: boolean }): void;
  isTyping(conversationId: number): boolean;
  renewAll(): void;
}

// ----------------------------------------------------------------- client

/** The constructor of a WebSocket with the browser's API (addEventListener, send, close). */
export interface WebSocketConstructor {
  new (url: string, protocols?: string | string[], options?: unknown): WebSocketLike;
}
export interface WebSocketLike {
  binaryType?: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'message' | 'close' | 'error', listener: (ev: any) => void): void;
}

export interface ClientOptions {
  /** The host's WebSocket endpoint, e.g. `wss://chat.example/ws`; the token is added as `?token=`. */
  url: string;
  /** A fixed token (JWT). Give this or getToken. */
  token?: string;
  /** Called before every connection attempt (the first, each reconnect, and after a refusal); may be async. */
  getToken?: (context: { reason: TokenReason; attempt: number }) => string | Promise<string>;
  /** The WebSocket implementation (default globalThis.WebSocket; in Node 20: `import WebSocket from 'ws'`). */
  WebSocket?: WebSocketConstructor;
  /** Third constructor argument for Node's ws (e.g. `{origin: 'https://app.example'}` for an origins allowlist). */
  webSocketOptions?: unknown;
  /** Where positions are kept (default MemoryPositionStore). */
  positions?: PositionStore;
  /** Reconnect backoff: a Backoff, or its options (default 500 ms .. 30 s, full jitter). */
  backoff?: Backoff | BackoffOptions;
  /** A connection open this long resets the backoff (default 10000). */
  stableAfterMs?: number;
  /** Default command timeout (default 15000; 0: none). */
  commandTimeoutMs?: number;
  /** Default send() timeout (default 0: retry until acknowledged or close()). */
  sendTimeoutMs?: number;
  /** How long to wait for hello after opening (default 15000). */
  connectTimeoutMs?: number;
  /** Ping when the host was quiet this long; drop the connection after this plus commandTimeoutMs of silence (default 20000; 0: off). */
  heartbeatMs?: number;
  /** At most this many commands in flight (default and maximum 16, the host's limit). */
  maxInFlight?: number;
  /** List conversations after every hello to learn new ones and their epochs (default true). */
  syncConversations?: boolean;
  /** Events reloaded by a resync (default 50, clamped by the host to history_max). */
  resyncLimit?: number;
  /** One message.send in flight per conversation, so messages are stored in the order sent (default true). */
  orderedSends?: boolean;
  /** Typing renewal (default renewMs 3000, idleMs 5000). */
  typing?: { renewMs?: number; idleMs?: number };
  /** Source of `online`/`offline` events (default window when present; null: none). */
  network?: EventTarget | null;
  /** On `offline`, ping the open connection; no answer within this long drops it, and
   *  `online` reconnects and resumes (default 2500; 0: leave an open connection alone). */
  offlineProbeMs?: number;
}

export interface SendOptions {
  replyTo?: number;
  attachments?: Attachment[];
  /** Your own client key (≤ 128 bytes); default a random one. */
  clientKey?: string;
  /** ms; default sendTimeoutMs (0: none). */
  timeout?: number;
}

export class SwitchboardClient {
  constructor(options: ClientOptions);
  readonly url: string;
  readonly state: ConnectionState;
  /** From hello; null before the first. */
  readonly userId: string | null;
  readonly sessionId: number | null;
  readonly limits: Hello['limits'] | null;
  readonly typing: TypingNotifier;

  on<K extends keyof ClientEventMap>(type: K, listener: (...args: ClientEventMap[K]) => void): () => void;
  on(type: string, listener: (event: SwitchboardEvent) => void): () => void;
  once<K extends keyof ClientEventMap>(type: K, listener: (...args: ClientEventMap[K]) => void): () => void;
  once(type: string, listener: (event: SwitchboardEvent) => void): () => void;
  off<K extends keyof ClientEventMap>(type: K, listener: (...args: ClientEventMap[K]) => void): void;
  off(type: string, listener: (...args: any[]) => void): void;

  /** Starts connecting and keeps reconnecting until close(); resolves with the first hello. */
  connect(): Promise<Hello>;
  /** Skips the backoff wait now ("retry now"). */
  reconnect(): void;
  /** Closes and stops reconnecting; outstanding commands reject with `closed`. */
  close(code?: number, reason?: string): Promise<void>;
  /** The position delivered to the app for a conversation. */
  position(conversationId: number): Position | undefined;

  /** Any command (feature plugins' too); resolves with its result. */
  command<T = any>(type: string, fields?: Record<string, unknown>, options?: { timeout?: number }): Promise<T>;

  send(conversationId: number, text: string, options?: SendOptions): Promise<SendResult> & { clientKey: string };
  editMessage(messageId: number, text: string): Promise<{ message: Message }>;
  deleteMessage(messageId: number): Promise<{ message: Message; changed: boolean }>;

  history(conversationId: number, options?: { before?: number; after?: number; limit?: number; timeout?: number }): Promise<HistoryPage>;
  historyPages(conversationId: number, options?: { before?: number; limit?: number }): AsyncGenerator<HistoryPage, void, void>;

  listConversations(options?: { after?: number; limit?: number }): Promise<{ conversations: Conversation[] }>;
  listAllConversations(): Promise<Conversation[]>;
  createConversation(spec: { kind: ConversationKind; name?: string; members?: string[] }): Promise<{ conversation: Conversation; created: boolean }>;
  getConversation(conversationId: number): Promise<{ conversation: Conversation; members: Member[] }>;
  joinConversation(conversationId: number): Promise<{ member: Member; changed: boolean }>;
  leaveConversation(conversationId: number): Promise<{ left: boolean }>;

  addMember(conversationId: number, userId: string, role?: Role): Promise<{ member: Member }>;
  removeMember(conversationId: number, userId: string): Promise<{ removed: boolean }>;
  setMemberRole(conversationId: number, userId: string, role: Role): Promise<{ member: Member; changed: boolean }>;

  presence(conversationId: number): Promise<{ conversation_id: number; online: string[] }>;
  react(messageId: number, emoji: string): Promise<{ message_id: number; emoji: string; changed: boolean; seq?: number }>;
  unreact(messageId: number, emoji: string): Promise<{ message_id: number; emoji: string; changed: boolean; seq?: number }>;
  pin(messageId: number): Promise<{ message_id: number; changed: boolean; seq?: number }>;
  unpin(messageId: number): Promise<{ message_id: number; changed: boolean; seq?: number }>;
  pins(conversationId: number): Promise<{ pins: { message_id: number; pinned_by: string; pinned_at: number; text: string; author: string }[] }>;
  markRead(conversationId: number, seq: number): Promise<{ conversation_id: number; seq: number; unread: number; changed: boolean }>;
  unread(): Promise<{ conversations: { conversation_id: number; read_seq: number; unread: number }[] }>;
  ping(): Promise<{}>;
}

// ------------------------------------------------------------------ misc

/** A new random client key (32 hex digits). */
export function newClientKey(): string;
/** True for events with a stream position (not presence, typing, receipts, unread). */
export function isPersistent(event: unknown): event is PersistentEvent;
export const EPHEMERAL_TYPES: ReadonlySet<string>;
