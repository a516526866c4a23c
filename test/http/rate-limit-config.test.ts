import { describe, expect, it } from 'vitest';
import { readConfig, type Config } from '../../src/config.js';
import { formatRateLimit, parseRateLimit } from '../../src/http/plugins/rate-limit.js';

describe('--rate-limit / IOASD_RATE_LIMIT', () => {
  it('defaults to 6000 a minute per principal', () => {
    expect((readConfig([], {}) as Config).rateLimit).toEqual({ max: 6000, windowMs: 60_000 });
  });

  it('reads MAX/WINDOW from the flag or the variable (the flag wins), and off', () => {
    expect((readConfig(['--rate-limit', '100/1s'], {}) as Config).rateLimit).toEqual({ max: 100, windowMs: 1000 });
    expect((readConfig([], { IOASD_RATE_LIMIT: '50/10s' }) as Config).rateLimit).toEqual({ max: 50, windowMs: 10_000 });
    expect((readConfig(['--rate-limit', '7/h'], { IOASD_RATE_LIMIT: '50/10s' }) as Config).rateLimit).toEqual({ max: 7, windowMs: 3_600_000 });
    expect((readConfig(['--rate-limit', 'off'], {}) as Config).rateLimit).toBeNull();
    expect((readConfig([], { IOASD_RATE_LIMIT: '0' }) as Config).rateLimit).toBeNull();
  });

  it('refuses anything else naming the option', () => {
    for (const bad of ['100', '100/', '/1s', '0/1s', '-1/1s', '100/1d', '100/0s', '1e3/1s', 'fast']) {
      expect(() => readConfig([`--rate-limit=${bad}`], {}), bad).toThrow(/--rate-limit\/IOASD_RATE_LIMIT/);
    }
  });

  it('formats what it parses back the same way', () => {
    for (const text of ['6000/1m', '100/1s', '50/10s', '7/1h', '3/250ms']) expect(formatRateLimit(parseRateLimit(text)!)).toBe(text);
    expect(formatRateLimit(null)).toBe('off');
  });
});
