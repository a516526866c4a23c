import { z } from 'zod';
import { IoasdError } from '../core/errors.js';
import { parseU64 } from '../core/u64.js';

/**
 * A u64 in a request: hex ("0x1000") or decimal string, or a JSON integer up to 2^53-1. Decodes to an
 * exact bigint. A value past 2^64-1 is reported with errno EOVERFLOW (SPEC 2), carried in the issue's
 * params so the error handler can tell it from a malformed value (EINVAL).
 */
/**
 * What a u64 string may be: `0x` and 1-16 hex digits, or 1-20 decimal digits. A longer string of
 * digits stands for more than 64 bits, so it is EOVERFLOW like any other value past 2^64-1 (and is
 * never handed to BigInt, whose parsing is quadratic in the length).
 */
export const U64_TEXT = /^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/;

export const U64Input = z
  .union([
    z
      .string()
      .regex(/^(0x[0-9a-fA-F]+|[0-9]+)$/, 'expected a hex ("0x1000") or decimal string')
      // The document states the bound the transform below enforces.
      .meta({ pattern: U64_TEXT.source, maxLength: 20 }),
    z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  ])
  .transform((value, ctx) => {
    if (typeof value === 'string' && !U64_TEXT.test(value)) {
      ctx.addIssue({ code: 'custom', message: 'larger than 2^64-1 (more digits than 64 bits hold)', params: { errno: 'EOVERFLOW' } });
      return z.NEVER;
    }
    try {
      return parseU64(value, 'value');
    } catch (err) {
      const errno = err instanceof IoasdError ? err.errno : 'EINVAL';
      ctx.addIssue({ code: 'custom', message: errno === 'EOVERFLOW' ? 'larger than 2^64-1' : 'not a u64', params: { errno } });
      return z.NEVER;
    }
  })
  .meta({ description: 'unsigned 64-bit: hex or decimal string, or an integer up to 2^53-1', examples: ['0x1000'] });

/** A u64 in a response: lowercase hex. */
export const HexU64 = z.string().regex(/^0x[0-9a-f]+$/).meta({ description: 'unsigned 64-bit, lowercase hex', examples: ['0x1000'] });
