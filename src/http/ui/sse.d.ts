// Types of sse.js for TypeScript callers (ioasctl's `events`, the tests); the page loads sse.js as is,
// and the build copies sse.js (not this file) into dist/http/ui, where dist/cli/events.js imports it.

export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

export interface SseParserOptions {
  /** The position a resumed stream starts from (what the reconnection sent as Last-Event-ID). */
  lastEventId?: string;
  /** Each comment line (`: keep-alive`), without the colon and one leading space. */
  onComment?(text: string): void;
}

export class SseParser {
  constructor(options?: SseParserOptions);
  /** The last event id, set when an event (or an id alone) is dispatched: what a reconnection sends. */
  readonly lastEventId: string;
  /** The reconnection time the stream asked for (`retry:`), in ms, or null. */
  readonly retry: number | null;
  feed(text: string): SseMessage[];
}

export class StreamRefused extends Error {
  status: number;
  body: unknown;
}

export type FollowStatus = 'connecting' | 'reconnecting' | 'live' | 'disconnected' | 'closed';

export interface DropInfo {
  error: unknown;
  retryInMs: number;
}

export interface FollowOptions {
  url: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Added to every request. */
  headers?: Record<string, string>;
  onEvent(event: { id: string; event: string; data: unknown }): void | Promise<void>;
  onOpen?(info: { resumed: boolean; lastEventId: string }): void | Promise<void>;
  /** `info` comes with 'disconnected': `error` is undefined when the server ended the stream; the next try is in `retryInMs`. */
  onStatus?(status: FollowStatus, info?: DropInfo): void | Promise<void>;
  signal?: AbortSignal;
  /** Where to start: sent as Last-Event-ID ('' for what happens next). */
  lastEventId?: string;
  retryMs?: number;
  maxRetryMs?: number;
  /** A connection silent this long is dropped and resumed (default 45 s; 0: never). */
  idleMs?: number;
  fetchImpl?: typeof fetch;
}

export function followEvents(options: FollowOptions): Promise<void>;
