import type { Client } from './client.js';
import type { Settings } from './settings.js';

/** Where output goes; the binary passes the process's streams. */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
}

/** What a command needs to talk to the server and to print. */
export interface Context {
  io: Io;
  json: boolean;
  settings: () => Settings;
  client: () => Client;
}

/** A path parameter URL-encoded, leaving the ':' of PCI addresses readable (RFC 3986 allows it in a segment). */
export function pathSegment(value: string): string {
  return encodeURIComponent(value).replace(/%3A/gi, ':').replace(/%40/g, '@');
}
