// Types of sse.js for TypeScript callers (tests); the page loads sse.js as is.

export interface SseMessage {
  id: string;
  event: string;
  data: string;
}

export class SseParser {
  lastEventId: string;
  retry: number | null;
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
