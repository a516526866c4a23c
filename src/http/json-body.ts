import type { FastifyInstance } from 'fastify';
import { HttpRefusal } from './errors.js';

/**
 * The one body parser: JSON in UTF-8, nested at most `maxDepth` levels. Anything else is refused
 * before a handler runs: another media type (text/plain included) or a JSON charset other than
 * UTF-8 is 415; a deeper document is 400 EINVAL, checked on the text before JSON.parse so that no
 * later step (validation, storage, serialization) ever recurses through it.
 */
export function registerJsonBody(app: FastifyInstance, maxDepth: number): void {
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, raw, done) => {
    const body = String(raw);
    const charset = charsetOf(request.headers['content-type']);
    if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
      return done(new HttpRefusal(415, 'EINVAL', `charset ${charset} is not supported: send JSON in UTF-8`), undefined);
    }
    const depth = nestingDepth(body, maxDepth);
    if (depth > maxDepth) {
      const message = `JSON nested deeper than ${maxDepth} levels`;
      return done(new HttpRefusal(400, 'EINVAL', `body: ${message}`, [{ path: 'body', message }]), undefined);
    }
    return parseJson(request, body, done);
  });
}

/** The charset parameter of a Content-Type header, lowercased and unquoted, if there is one. */
export function charsetOf(contentType: string | undefined): string | undefined {
  if (contentType === undefined) return undefined;
  for (const part of contentType.split(';').slice(1)) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim().toLowerCase() !== 'charset') continue;
    return part.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase();
  }
  return undefined;
}

const OPEN_OBJECT = 0x7b; // {
const OPEN_ARRAY = 0x5b; // [
const CLOSE_OBJECT = 0x7d; // }
const CLOSE_ARRAY = 0x5d; // ]
const QUOTE = 0x22; // "
const BACKSLASH = 0x5c; // \

/**
 * The deepest nesting of objects and arrays in a JSON text (a top-level object is 1), found in one
 * pass that skips strings; it stops as soon as `limit` is passed. Malformed text is left to JSON.parse.
 */
export function nestingDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return deepest;
}
