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

export interface FollowOptions {
  url: string;
  token?: string;
  onEvent(event: { id: string; event: string; data: unknown }): void | Promise<void>;
  onOpen?(info: { resumed: boolean }): void | Promise<void>;
  onStatus?(status: 'connecting' | 'reconnecting' | 'live' | 'disconnected' | 'closed'): void;
  signal?: AbortSignal;
  lastEventId?: string;
  retryMs?: number;
  maxRetryMs?: number;
  fetchImpl?: typeof fetch;
}

export function followEvents(options: FollowOptions): Promise<void>;
