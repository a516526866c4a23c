import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { App } from '../../src/app.js';
import { ADMIN_TOKEN, testApp, type TestApp } from '../helpers.js';

const ADMIN = `Authorization: Bearer ${ADMIN_TOKEN}`;

/**
 * What only a real server shows: Node's HTTP parser and its timeouts, met before Fastify sees a
 * request. A raw socket plays the slow or broken client. The timeouts are shortened so the test is
 * quick; nothing asserts how long anything took.
 */

let t: TestApp;
let port: number;
beforeAll(async () => {
  t = await testApp({ http: { headersTimeoutMs: 400, requestTimeoutMs: 800, timeoutCheckMs: 50 } });
  await t.app.listen({ host: '127.0.0.1', port: 0 });
  port = (t.app.server.address() as { port: number }).port;
});
afterAll(() => t.close());

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
  /** The server closed the connection. */
  closed: boolean;
}

/** Opens a connection, lets `client` write to it, and collects what the server answers until it closes. */
function exchange(client: (socket: Socket) => unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer; got so far: ${JSON.stringify(text)}`));
    }, 10_000);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => (text += chunk));
    socket.on('error', () => undefined); // a reset after the answer is fine
    socket.on('close', () => {
      clearTimeout(guard);
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      resolve({ status: Number(statusLine.split(' ')[1] ?? 0), headers, body: rest.join('\r\n\r\n'), closed: true });
    });
    socket.on('connect', () => void client(socket));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function expectProblemAnswer(a: Answer, status: number, errno: string): void {
  expect(a.status).toBe(status);
  expect(a.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(JSON.parse(a.body)).toMatchObject({ status, errno });
  expect(a.closed).toBe(true);
}

async function stillServes(app: App): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`);
  expect(res.status).toBe(200);
  expect(app.server.listening).toBe(true);
}

describe('slow clients are cut off with 408 problem+json', () => {
  it('a client dribbling its headers one byte at a time', async () => {
    const answer = await exchange(async (socket) => {
      socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
      for (const ch of 'X-Slow: ' + 'a'.repeat(200)) {
        if (socket.destroyed || socket.readableEnded) return;
        socket.write(ch);
        await sleep(20);
      }
    });
    expectProblemAnswer(answer, 408, 'ETIMEDOUT');
    await stillServes(t.app);
  });

  it('a client that sends its headers and then stalls in the body', async () => {
    const answer = await exchange((socket) => {
      socket.write(`POST /v1/contexts HTTP/1.1\r\nHost: x\r\n${ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"na`);
    });
    expectProblemAnswer(answer, 408, 'ETIMEDOUT');
    expect((await t.admin({ url: '/v1/contexts' })).json()).toEqual([]);
  });

  it('a body dribbled past the request timeout, with valid credentials, makes nothing', async () => {
    const answer = await exchange(async (socket) => {
      socket.write(`POST /v1/contexts HTTP/1.1\r\nHost: x\r\n${ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{"name":"`);
      for (let i = 0; i < 100 && !socket.destroyed && !socket.readableEnded; i++) {
        socket.write('a');
        await sleep(30);
      }
    });
    expectProblemAnswer(answer, 408, 'ETIMEDOUT');
    expect((await t.admin({ url: '/v1/contexts' })).json()).toEqual([]);
  });

  it('a connection that never sends anything is closed', async () => {
    const answer = await exchange(() => undefined);
    expect(answer.closed).toBe(true);
    expectProblemAnswer(answer, 408, 'ETIMEDOUT');
  });
});

describe("the HTTP parser's own errors are problem+json", () => {
  it('a malformed request line is 400', async () => {
    expectProblemAnswer(await exchange((s) => s.write('HELLO\r\n\r\n')), 400, 'EINVAL');
    expectProblemAnswer(await exchange((s) => s.write('GET / HTTP/9.9\r\nHost: x\r\n\r\n')), 400, 'EINVAL');
  });

  it('a request line longer than the header limit is 414, headers over it 431', async () => {
    expectProblemAnswer(await exchange((s) => s.write(`GET /${'a'.repeat(20_000)} HTTP/1.1\r\nHost: x\r\n\r\n`)), 414, 'EINVAL');
    expectProblemAnswer(await exchange((s) => s.write(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`)), 431, 'EINVAL');
    await stillServes(t.app);
  });

  it('a URL over 4096 characters that the parser accepts is 414 from the app', async () => {
    const res = await fetch(`http://127.0.0.1:${port}/healthz?${'q'.repeat(5000)}`);
    expect(res.status).toBe(414);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  });

  it('a bad Content-Length is 400', async () => {
    expectProblemAnswer(await exchange((s) => s.write('POST /v1/contexts HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n')), 400, 'EINVAL');
  });
});

describe('the refusal counter sees parser errors', () => {
  it('counts them under route "(http parser)"', async () => {
    await exchange((s) => s.write('HELLO\r\n\r\n'));
    const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    expect(metrics).toMatch(/ioasd_refusals_total\{errno="EINVAL",method="",route="\(http parser\)"\} [1-9]/);
  });
});
