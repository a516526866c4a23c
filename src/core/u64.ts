import { fail } from './errors.js';

/**
 * Unsigned 64-bit addresses and lengths, exact over the whole range. In JS they are bigint; on the wire
 * lowercase hex strings; in SQLite fixed-width hex text so that text order is numeric order
 * (better-sqlite3 cannot bind integers >= 2^63).
 */
export const U64_MAX = (1n << 64n) - 1n;

const HEX = /^0x[0-9a-f]+$/i;
const DEC = /^[0-9]+$/;

/**
 * Parses a request value: a hex or decimal string, or a JSON integer up to 2^53-1.
 * A well-formed value above 2^64-1 is EOVERFLOW; anything else malformed is EINVAL naming `field`.
 */
export function parseU64(value: unknown, field: string): bigint {
  let n: bigint;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value < 0) {
      fail('EINVAL', `${field}: expected a non-negative integer up to 2^53-1 or a string, got ${value}`, {
        problems: [{ path: field, message: 'not a non-negative safe integer' }],
      });
    }
    n = BigInt(value);
  } else if (typeof value === 'string' && (HEX.test(value) || DEC.test(value))) {
    n = BigInt(value);
  } else {
    fail('EINVAL', `${field}: expected a hex ("0x1000") or decimal string`, {
      problems: [{ path: field, message: 'not a hex or decimal unsigned integer' }],
    });
  }
  if (n > U64_MAX) fail('EOVERFLOW', `${field}: ${value} is larger than 2^64-1`);
  return n;
}

/** Wire form: lowercase hex with 0x. */
export function hex(n: bigint): string {
  return '0x' + n.toString(16);
}

/** Storage form: 16 lowercase hex digits, so SQLite text order equals numeric order. */
export function toKey(n: bigint): string {
  return n.toString(16).padStart(16, '0');
}

export function fromKey(s: string): bigint {
  return BigInt('0x' + s);
}
