import MarkdownIt from 'markdown-it';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The README's walkthrough is a script: its ```sh blocks run in order in one bash, from the
 * repository, against the server its first block starts (a fresh database in a temporary
 * directory, on a free port given as PORT), and each block's output (standard error included)
 * must be what the ```text block after it shows; a block without one must print nothing. `…`
 * stands for any text within a line, or for any lines when it is a line of its own. The text a
 * reader copies is the text that runs.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const HEADING = '## Walkthrough';

export interface Step {
  code: string;
  expected: string | null;
  line: number;
}

/** The ```sh blocks of the README section starting with `heading`, each with the ```text block that follows it. */
export function stepsOf(markdown: string, heading: string): Step[] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => l.startsWith(heading));
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && /^## /.test(l));
  const section = lines.slice(start, end < 0 ? undefined : end).join('\n');
  const fences = new MarkdownIt().parse(section, {}).filter((t) => t.type === 'fence');
  const steps: Step[] = [];
  fences.forEach((f, i) => {
    if (f.info.trim() !== 'sh') return;
    const next = fences[i + 1];
    steps.push({ code: f.content, expected: next && next.info.trim() === 'text' ? next.content : null, line: start + (f.map?.[0] ?? 0) + 1 });
  });
  return steps;
}

/** A pattern for an expected output: `…` is any text in a line, or any lines when alone on one. */
export function outputPattern(expected: string): RegExp {
  const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/…/g, '[^\\n]*?');
  let pattern = '';
  expected
    .replace(/\n$/, '')
    .split('\n')
    .forEach((line, i) => {
      if (line === '…') pattern += i === 0 ? '(?:[^\\n]*\\n)*?' : '(?:\\n[^\\n]*)*?';
      else pattern += (i === 0 || pattern.endsWith('\\n)*?') ? '' : '\\n') + escape(line);
    });
  return new RegExp(`^${pattern}$`);
}

function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => resolvePort(typeof a === 'object' && a !== null ? a.port : 0));
    });
  });
}

const MARK = '@@@ioasd-walkthrough@@@';

describe('the README walkthrough', () => {
  it('the matcher: … within a line and … as lines', () => {
    expect(outputPattern('id  ctx-…\n').test('id  ctx-1a2b')).toBe(true);
    expect(outputPattern('a\n…\nz\n').test('a\nb\nc\nz')).toBe(true);
    expect(outputPattern('a\n…\nz\n').test('a\nz')).toBe(true);
    expect(outputPattern('id  ctx-…\n').test('id  ctx-1\nmore')).toBe(false);
    expect(outputPattern('exit status 5\n').test('exit status 4')).toBe(false);
  });

  it('runs as written against a fresh server and prints what it shows', { timeout: 300_000 }, async () => {
    const steps = stepsOf(readFileSync(join(ROOT, 'README.md'), 'utf8'), HEADING);
    // Both policies, with curl and with ioasctl, a refusal and its fix, a topology file, the container's start command.
    const all = steps.map((s) => s.code).join('\n');
    for (const needed of ['curl -s -X POST "$IOASD_URL/v1/devices/0000:01:00.0/bind"', 'ioasctl why 0000:01:00.0', 'set-driver 0000:01:00.1 vfio-pci', 'set-policy group-first', 'groups set-container 1', 'topology import', 'dist/main.js']) {
      expect(all, needed).toContain(needed);
    }
    const script = ['exec 2>&1', 'set -e', ...steps.flatMap((s, i) => [`printf '\\n${MARK}${i}\\n'`, s.code]), `printf '\\n${MARK}end\\n'`].join('\n');
    const home = mkdtempSync(join(tmpdir(), 'ioasd-walkthrough-'));
    const child = spawn('bash', ['-c', script], {
      cwd: ROOT,
      detached: true,
      env: { PATH: process.env.PATH ?? '', HOME: home, PORT: String(await freePort()), LANG: 'C.UTF-8' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (out += b.toString()));
    let code: number | null;
    try {
      code = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
    } finally {
      // Whatever the script left running (a server, if it failed half-way) goes with its process group.
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
      rmSync(home, { recursive: true, force: true });
    }
    const parts = out.split(new RegExp(`\\n${MARK}`));
    const segments = new Map<string, string>();
    for (const p of parts.slice(1)) {
      const nl = p.indexOf('\n');
      segments.set(p.slice(0, nl), p.slice(nl + 1));
    }
    steps.forEach((step, i) => {
      const actual = segments.get(String(i));
      const where = `README.md line ${step.line}:\n${step.code}`;
      expect(actual, `${where}\ndid not run (exit ${code}); output:\n${out}`).toBeDefined();
      const text = actual!.replace(/\n$/, '');
      if (step.expected === null) expect(text, `${where}\nprinted output but the README shows none`).toBe('');
      else expect(text, `${where}\nprinted:\n${text}\nthe README shows:\n${step.expected}`).toMatch(outputPattern(step.expected));
    });
    expect(code, out).toBe(0);
    expect(segments.has('end')).toBe(true);
  });
});
