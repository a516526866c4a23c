import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, oneWritePerTurn, redactSecrets } from '../../src/logger.js';
import { ADMIN_TOKEN, testApp } from '../helpers.js';

/** What docs/operations.md promises of the log: one line a request with its id, and no secret ever. */

function capture(): { stream: Writable; lines: () => Record<string, unknown>[]; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk, _encoding, callback) {
      text += String(chunk);
      callback();
    },
  });
  return { stream, text: () => text, lines: () => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) };
}

describe('request logging', () => {
  it('one request completed line a request, with the request id, method, URL, status and time; the bearer token is never written', async () => {
    const out = capture();
    const t = await testApp({ logger: createLogger('info', out.stream) });
    try {
      const res = await t.admin({ url: '/v1/groups/3', headers: { 'x-request-id': 'trace-42' } });
      expect(res.headers['x-request-id']).toBe('trace-42');
      const mine = out.lines().filter((l) => l.reqId === 'trace-42');
      expect(mine.map((l) => l.msg)).toEqual(['request completed']);
      expect(mine[0]!.req).toMatchObject({ method: 'GET', url: '/v1/groups/3' });
      expect(mine[0]!.res).toEqual({ statusCode: 200 });
      expect(typeof mine[0]!.responseTime).toBe('number');
      // A generated id when the caller sends none (or an unusable one), the same in the header and the log.
      const other = await t.admin({ url: '/healthz', headers: { 'x-request-id': 'has spaces' } });
      const id = other.headers['x-request-id'] as string;
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      expect(out.lines().filter((l) => l.reqId === id).map((l) => l.msg)).toEqual(['request completed']);
      expect(out.text()).not.toContain(ADMIN_TOKEN);
    } finally {
      await t.close();
    }
  });

  it('a token or authorization field is redacted at any depth, errors included', () => {
    const out = capture();
    const log = createLogger('info', out.stream);
    const err = Object.assign(new Error('refused'), { token: 'secret-1' });
    log.info({ token: 'secret-2', principal: { name: 'p', token: 'secret-3' }, headers: { Authorization: 'Bearer secret-4' }, err }, 'with secrets');
    log.info({ list: [{ deep: { token: 'secret-5', authorization: 'secret-6' } }] }, 'nested');
    const [first, second] = out.lines();
    expect(first).toMatchObject({ token: '[redacted]', principal: { name: 'p', token: '[redacted]' }, headers: { Authorization: '[redacted]' }, err: { message: 'refused', token: '[redacted]' }, msg: 'with secrets' });
    expect(second).toMatchObject({ list: [{ deep: { token: '[redacted]', authorization: '[redacted]' } }] });
    expect(out.text()).not.toMatch(/secret-\d/);
  });

  it('a line without a secret is written as pino wrote it', () => {
    const line = '{"level":30,"time":1,"msg":"a token was written (mode 0600)","kind":"tokens"}\n';
    expect(redactSecrets(line)).toBe(line);
    expect(redactSecrets('{"a":{"token":"x"},"b":"\\"token\\""}\n{"c":2}\n')).toBe('{"a":{"token":"[redacted]"},"b":"\\"token\\""}\n{"c":2}\n');
  });
});

describe('the stdout destination', () => {
  it('hands the lines of one event-loop turn over in one write, in order, redacted, and writes what is pending on flushSync', async () => {
    const writes: string[] = [];
    let flushed = 0;
    const dest = oneWritePerTurn({ write: (s: string) => writes.push(s), flushSync: () => flushed++ });
    dest.write('a\n');
    dest.write('b\n');
    dest.write('c\n');
    expect(writes).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toEqual(['a\nb\nc\n']);
    dest.write('{"d":1}\n');
    dest.write('{"token":"x"}\n');
    dest.flushSync();
    expect(writes).toEqual(['a\nb\nc\n', '{"d":1}\n{"token":"[redacted]"}\n']);
    expect(flushed).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(writes).toHaveLength(2);
  });
});
