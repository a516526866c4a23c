import GithubSlugger from 'github-slugger';
import MarkdownIt from 'markdown-it';
import type Token from 'markdown-it/lib/token.mjs';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

/**
 * The README and docs/ explain the project in its own words and point only at files in the
 * repository: every relative link must resolve to a file here (and a #fragment to a heading of the
 * markdown file it names), and nothing may refer to the contract kept outside the repository.
 * Links are read with a real markdown parser, so code blocks and code spans are not mistaken for
 * links, and anchors are slugged as GitHub renders them.
 */

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Not part of the repository's content: installed, built, or local state. */
const NOT_CONTENT = new Set(['node_modules', 'dist', '.git', 'data', 'coverage', '.vitest-tmp']);
const md = new MarkdownIt({ html: true });

function markdownFiles(root: string, dir = root): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    if (NOT_CONTENT.has(name)) continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...markdownFiles(root, path));
    else if (name.endsWith('.md')) out.push(path);
  }
  return out.sort();
}

function walk(tokens: readonly Token[], visit: (t: Token) => void): void {
  for (const t of tokens) {
    visit(t);
    if (t.children) walk(t.children, visit);
  }
}

/** Every link target of a markdown text: links, images, reference definitions, and HTML href/src. */
export function linksOf(markdown: string): string[] {
  const out: string[] = [];
  walk(md.parse(markdown, {}), (t) => {
    if (t.type === 'link_open') out.push(t.attrGet('href') ?? '');
    else if (t.type === 'image') out.push(t.attrGet('src') ?? '');
    else if (t.type === 'html_inline' || t.type === 'html_block') {
      for (const m of t.content.matchAll(/\b(?:href|src)\s*=\s*"([^"]*)"/gi)) out.push(m[1]!);
    }
  });
  return out;
}

/** The anchors GitHub gives a markdown file's headings. */
export function anchorsOf(markdown: string): Set<string> {
  const slugger = new GithubSlugger();
  const anchors = new Set<string>();
  const tokens = md.parse(markdown, {});
  tokens.forEach((t, i) => {
    if (t.type !== 'heading_open') return;
    const text = (tokens[i + 1]?.children ?? [])
      .filter((c) => c.type === 'text' || c.type === 'code_inline')
      .map((c) => c.content)
      .join('');
    anchors.add(slugger.slug(text));
  });
  return anchors;
}

export interface BrokenLink {
  file: string;
  link: string;
  reason: string;
}

const anchorCache = new Map<string, Set<string>>();
function anchorsOfFile(path: string): Set<string> {
  let anchors = anchorCache.get(path);
  if (!anchors) anchorCache.set(path, (anchors = anchorsOf(readFileSync(path, 'utf8'))));
  return anchors;
}

/** The links of one markdown file (at `file`, inside `root`) that do not resolve inside `root`. */
export function brokenLinks(root: string, file: string): BrokenLink[] {
  const broken: BrokenLink[] = [];
  const name = relative(root, file);
  for (const link of linksOf(readFileSync(file, 'utf8'))) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) continue; // https:, mailto: …
    const hash = link.indexOf('#');
    const pathPart = decodeURIComponent(hash === -1 ? link : link.slice(0, hash));
    const fragment = hash === -1 ? '' : decodeURIComponent(link.slice(hash + 1));
    const target = pathPart === '' ? file : pathPart.startsWith('/') ? join(root, pathPart) : resolve(dirname(file), pathPart);
    const inside = relative(root, target);
    const fail = (reason: string) => broken.push({ file: name, link, reason });
    if (inside.startsWith('..') || isAbsolute(inside)) {
      fail('points outside the repository');
    } else if (inside.split(sep).some((part) => NOT_CONTENT.has(part))) {
      fail(`points into ${inside.split(sep).find((p) => NOT_CONTENT.has(p))}/, which is not part of the repository`);
    } else if (!existsSync(target)) {
      fail(`no such file: ${inside}`);
    } else if (fragment !== '' && extname(target) === '.md' && !anchorsOfFile(target).has(fragment)) {
      fail(`no heading #${fragment} in ${inside}`);
    }
  }
  return broken;
}

const files = markdownFiles(ROOT);
const rel = (f: string) => relative(ROOT, f);

describe('documentation links', () => {
  it('finds the README and every file in docs/', () => {
    const names = files.map(rel);
    expect(names).toContain('README.md');
    const docs = readdirSync(join(ROOT, 'docs')).filter((n) => n.endsWith('.md'));
    expect(docs.length).toBeGreaterThanOrEqual(4);
    for (const d of docs) expect(names).toContain(join('docs', d));
  });

  it('every relative link in every markdown file resolves to a file (and heading) in the repository', () => {
    expect(files.flatMap((f) => brokenLinks(ROOT, f))).toEqual([]);
  });

  it('no markdown file refers to ../shared, outside the repository', () => {
    const offenders = files.filter((f) => readFileSync(f, 'utf8').includes('../shared')).map(rel);
    expect(offenders).toEqual([]);
  });

  it('the README links the docs index, and the index links every document in docs/', () => {
    expect(linksOf(readFileSync(join(ROOT, 'README.md'), 'utf8'))).toContain('docs/README.md');
    const index = new Set(linksOf(readFileSync(join(ROOT, 'docs/README.md'), 'utf8')).map((l) => l.split('#')[0]));
    const docs = readdirSync(join(ROOT, 'docs')).filter((n) => n.endsWith('.md') && n !== 'README.md');
    expect(docs.filter((d) => !index.has(d))).toEqual([]);
  });
});

describe('the link checker itself', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'ioasd-links-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));
  const repo = join(tmp, 'repo');
  mkdirSync(join(repo, 'docs'), { recursive: true });
  mkdirSync(join(repo, 'node_modules'), { recursive: true });
  mkdirSync(join(tmp, 'shared'), { recursive: true });
  writeFileSync(join(tmp, 'shared', 'SPEC.md'), '# Spec\n');
  writeFileSync(join(repo, 'node_modules', 'x.md'), '# x\n');
  writeFileSync(join(repo, 'docs', 'guide.md'), '# Guide\n\n## Real hosts: `--sysfs`\n\n## Backups\n\n## Backups\n');
  const check = (markdown: string) => {
    writeFileSync(join(repo, 'README.md'), markdown);
    return brokenLinks(repo, join(repo, 'README.md')).map((b) => `${b.link}: ${b.reason}`);
  };

  it('accepts links to existing files and headings, external links, and links inside code', () => {
    expect(
      check(
        [
          '[guide](docs/guide.md) [sysfs](docs/guide.md#real-hosts---sysfs) [second](docs/guide.md#backups-1)',
          '[dir](docs/) [self](#top) [web](https://example.org/x.md) [mail](mailto:a@b.c)',
          '',
          '# Top',
          '',
          '`[not a link](missing.md)`',
          '',
          '```sh',
          'echo "[not a link](missing.md)"',
          '```',
        ].join('\n'),
      ),
    ).toEqual([]);
  });

  it('reports a missing file, a missing heading, a link outside the repository and one into node_modules', () => {
    expect(
      check(
        [
          '[gone](docs/gone.md)',
          '[typo](docs/guide.md#backup)',
          '[spec](../shared/SPEC.md)',
          '[dep](node_modules/x.md)',
          '![img](docs/missing.png)',
          '[ref][r]',
          '',
          '[r]: docs/also-gone.md',
          '',
          '<a href="docs/html-gone.md">html</a>',
        ].join('\n'),
      ),
    ).toEqual([
      'docs/gone.md: no such file: docs/gone.md',
      'docs/guide.md#backup: no heading #backup in docs/guide.md',
      '../shared/SPEC.md: points outside the repository',
      'node_modules/x.md: points into node_modules/, which is not part of the repository',
      'docs/missing.png: no such file: docs/missing.png',
      'docs/also-gone.md: no such file: docs/also-gone.md',
      'docs/html-gone.md: no such file: docs/html-gone.md',
    ]);
  });
});
