import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { TokenHashMemo } from '../../src/core/token-memo.js';
import { hashToken } from '../../src/store/secrets.js';

describe('the token hash memo', () => {
  it('answers exactly what hashing answers, whatever was kept and however often it started over', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ maxLength: 12 }), fc.boolean()), { maxLength: 60 }), fc.integer({ min: 1, max: 8 }), (calls, capacity) => {
        let hashed = 0;
        const memo = new TokenHashMemo((t) => {
          hashed++;
          return hashToken(t);
        }, capacity);
        for (const [token, authenticated] of calls) {
          const h = memo.of(token);
          expect(h).toBe(hashToken(token));
          if (authenticated) memo.keep(token, h);
          expect(memo.size).toBeLessThanOrEqual(capacity);
        }
        expect(hashed).toBeLessThanOrEqual(calls.length);
      }),
    );
  });

  it('hashes a kept token no more, and keeps only what it is told to', () => {
    let hashed = 0;
    const memo = new TokenHashMemo((t) => (hashed++, hashToken(t)), 2);
    memo.of('a');
    memo.of('a');
    expect(hashed).toBe(2); // never kept: hashed each time
    memo.keep('a', memo.of('a'));
    memo.of('a');
    expect(hashed).toBe(3);
    memo.keep('b', memo.of('b'));
    memo.keep('c', memo.of('c')); // full: starts over with c alone
    expect(memo.size).toBe(1);
    expect(memo.of('a')).toBe(hashToken('a'));
  });
});
