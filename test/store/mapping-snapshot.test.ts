import Database from 'better-sqlite3';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { buildApp, type App } from '../../src/app.js';
import type { Caller } from '../../src/core/caller.js';
import { snapshot } from '../../src/core/check.js';
import type { Core } from '../../src/core/core.js';
import { openDatabase, type Db } from '../../src/store/database.js';
import { mappingSnapshotProblems, PART_ROWS, readMappingSnapshot, writeMappingSnapshot } from '../../src/store/mapping-snapshot.js';
import { IoasdError } from '../../src/core/errors.js';
import { createLogger } from '../../src/logger.js';
import { ADMIN_TOKEN } from '../helpers.js';

/**
 * The packed copy of the mappings table: written at a clean stop, read by the next start instead of
 * the rows, emptied by any change to the table, compared row by row by the self-check.
 */
const admin: Caller = { id: 'admin', role: 'admin' } as Caller;
const OFFSET = 1n << 63n;
let dir: string;
let app: App | undefined;
afterEach(async () => {
  await app?.close();
  app = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const open = async (): Promise<App> => (app = await buildApp({ db: join(dir, 'ioasd.db'), adminToken: ADMIN_TOKEN, leaseCheckMs: 0 }));
const close = async (): Promise<void> => {
  await app?.close();
  app = undefined;
};
/** Reads the closed database file directly. */
const onDisk = <T>(fn: (db: Db) => T): T => {
  const db = new Database(join(dir, 'ioasd.db'));
  try {
    return fn(db);
  } finally {
    db.close();
  }
};
const triggers = (db: Db) => db.prepare("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'mapping_snapshot_stale_on_%'").pluck().get() as number;
const copyRows = (db: Db) => db.prepare('SELECT count(*) AS parts, coalesce(sum(rows), 0) AS rows FROM mapping_snapshot').get() as { parts: number; rows: number };

/** What a start rebuilds: every object with its mappings, the charges, and which mappings share pinned pages. */
function state(core: Core): string {
  const objects = [...snapshot(core).entries()];
  const usage = core.quotas.usageFor('admin');
  const sharing: string[] = [];
  for (const space of core.objects.all('ioas').values()) {
    for (const m of space.mappings.from()) sharing.push(`${space.id}:${m.iova} pages ${m.pages.id} refs ${m.pages.refs} bytes ${m.pages.bytes}`);
  }
  // Sorted: the order address spaces sit in the object table is not state (an undone delete puts one back last).
  return JSON.stringify({ objects, usage, sharing: sharing.sort() }, (_, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

/** Two spaces: plain mappings, one at the top of the user address space, and a partial copy (shared pages of another size). */
function fill(core: Core): { a: number; b: number } {
  const ctx = core.contexts.create(admin, {});
  const a = core.ioas.create(admin, ctx.id).id;
  const b = core.ioas.create(admin, ctx.id).id;
  core.mappings.mapBatch(
    admin,
    a,
    Array.from({ length: 300 }, (_, i) => ({ iova: 0x100000n + BigInt(i) * 0x4000n, length: 0x2000n, userAddress: 0x7f0000000000n + BigInt(i) * 0x2000n, read: true, write: i % 3 !== 0 })),
  );
  core.mappings.map(admin, a, { iova: 0x4000_0000n, length: 0x1000n, userAddress: 0xffff_ffff_ffff_e000n, read: true, write: false });
  core.mappings.copy(admin, b, { srcIoasId: a, srcIova: 0x104000n, length: 0x1000n, dstIova: 0x200000n, read: true, write: false });
  core.mappings.copy(admin, b, { srcIoasId: a, srcIova: 0x108000n, length: 0x2000n, read: true, write: true });
  return { a, b };
}

describe('the packed copy of the mappings table', () => {
  it('is written at a clean stop; the next start reads it and rebuilds the same state; a change empties it in the same transaction', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ioasd-snapshot-'));
    const core = (await open()).ioasd;
    const { a } = fill(core);
    const before = state(core);
    expect(core.db.prepare('SELECT count(*) FROM mappings').pluck().get()).toBe(303);
    // No copy and no triggers while the server runs.
    expect([copyRows(core.db), triggers(core.db)]).toEqual([{ parts: 0, rows: 0 }, 0]);
    await close();
    expect(onDisk((db) => [copyRows(db), triggers(db)])).toEqual([{ parts: 1, rows: 303 }, 3]);

    const again = (await open()).ioasd;
    expect(state(again)).toBe(before);
    expect(again.check()).toMatchObject({ ok: true, violations: [] });
    // Nothing changed the mappings: the copy stays for the next start.
    expect(copyRows(again.db)).toEqual({ parts: 1, rows: 303 });

    // A change rolled back (a dry run of a delete that drops mappings) leaves the copy and its triggers.
    again.tx.dryRun(() => again.ioas.destroy(admin, a));
    expect([copyRows(again.db), triggers(again.db)]).toEqual([{ parts: 1, rows: 303 }, 3]);
    // The first change removes both, in its own transaction.
    again.mappings.map(admin, a, { length: 0x1000n, userAddress: 0x1000n, read: true, write: true });
    expect([copyRows(again.db), triggers(again.db)]).toEqual([{ parts: 0, rows: 0 }, 0]);
    const changed = state(again);
    await close();
    expect(onDisk(copyRows)).toEqual({ parts: 1, rows: 304 });
    expect(state((await open()).ioasd)).toBe(changed);
  });

  it('is what the start reads: a row changed behind it (triggers dropped) shows, and the self-check names the difference', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ioasd-snapshot-'));
    const { a } = fill((await open()).ioasd);
    await close();
    onDisk((db) => {
      const saved = db.prepare("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'mappings'").pluck().all() as string[];
      expect(saved).toHaveLength(3);
      db.exec('DROP TRIGGER mapping_snapshot_stale_on_update');
      db.prepare('UPDATE mappings SET user_address = ? WHERE ioas_id = ? AND iova = ?').run(0x5000n - OFFSET, a, 0x100000n - OFFSET);
      db.exec(saved.find((s) => s.includes('on_update'))!);
    });
    const core = (await open()).ioasd;
    // Memory holds the copy's user address, not the row's.
    expect(core.ioas.get(admin, a).mappings.find(0x100000n)?.userAddress).toBe(0x7f0000000000n);
    const report = core.check();
    expect(report.ok).toBe(false);
    expect(report.violations).toEqual([
      { invariant: 'mapping-copy-equals-rows', object: 'mappings', detail: expect.stringMatching(/^row 0: the copy has .* the table .*20480 /) as unknown },
    ]);
  });

  it('is emptied by any other SQLite client that changes the table (the triggers live in the schema)', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ioasd-snapshot-'));
    const { a } = fill((await open()).ioasd);
    await close();
    for (const [change, iova] of [
      ['UPDATE mappings SET flags = 1 WHERE ioas_id = ? AND iova = ?', 0x104000n],
      ['DELETE FROM mappings WHERE ioas_id = ? AND iova = ?', 0x10c000n],
      ['INSERT INTO mappings SELECT ioas_id, iova + 0x1000000, length, user_address, flags, pages_id + 100000, pages_bytes FROM mappings WHERE ioas_id = ? AND iova = ?', 0x110000n],
    ] as const) {
      await open();
      await close();
      expect(onDisk(copyRows).parts).toBe(1);
      expect(onDisk((db) => db.prepare(change).run(a, iova - OFFSET).changes)).toBe(1);
      expect(onDisk(copyRows)).toEqual({ parts: 0, rows: 0 });
      const core = (await open()).ioasd;
      expect(core.check()).toMatchObject({ ok: true });
      await close();
    }
  });

  it('is passed over when unusable (a damaged header, a row count off): the start reads the rows, the self-check names it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ioasd-snapshot-'));
    const { a } = fill((await open()).ioasd);
    const want = state(app!.ioasd);
    await close();
    onDisk((db) => {
      const data = db.prepare('SELECT data FROM mapping_snapshot WHERE part = 0').pluck().get() as Buffer;
      data.write('ioasdXX1', 0, 'latin1');
      db.prepare('UPDATE mapping_snapshot SET data = ? WHERE part = 0').run(data);
    });
    let core = (await open()).ioasd;
    expect(state(core)).toBe(want);
    expect(core.check().violations).toEqual([{ invariant: 'mapping-copy-equals-rows', object: 'mappings', detail: expect.stringContaining('part 0') as unknown }]);
    // The stop replaces the copy it could not use, though no mapping changed.
    await close();
    core = (await open()).ioasd;
    expect(core.check()).toMatchObject({ ok: true, violations: [] });
    expect(copyRows(core.db)).toEqual({ parts: 1, rows: 303 });
    await close();

    // A row the copy does not count (added with the insert trigger dropped): the rows are read.
    onDisk((db) => {
      db.exec('DELETE FROM mapping_snapshot');
      expect(writeMappingSnapshot(db)).toBe(303);
      db.exec('DROP TRIGGER mapping_snapshot_stale_on_insert');
      db.prepare('INSERT INTO mappings VALUES (?, ?, ?, ?, 3, 99999, NULL)').run(a, 0x4800_0000n - OFFSET, 0x1000n - OFFSET, 0x9000n - OFFSET);
    });
    core = (await open()).ioasd;
    expect(core.ioas.get(admin, a).mappings.find(0x4800_0000n)?.userAddress).toBe(0x9000n);
    expect(core.check().violations).toEqual([{ invariant: 'mapping-copy-equals-rows', object: 'mappings', detail: expect.stringContaining('without its triggers') as unknown }]);
    await close();

    // A copy whose triggers are gone (a migration rebuilding the table drops them) is not read,
    // though it counts the table's rows: the row changed meanwhile shows from the table.
    onDisk((db) => {
      db.exec('DELETE FROM mappings WHERE iova = ' + String(0x4800_0000n - OFFSET));
      expect(writeMappingSnapshot(db)).toBe(303);
      for (const op of ['insert', 'update', 'delete']) db.exec(`DROP TRIGGER mapping_snapshot_stale_on_${op}`);
      db.prepare('UPDATE mappings SET user_address = ? WHERE ioas_id = ? AND iova = ?').run(0x5000n - OFFSET, a, 0x100000n - OFFSET);
    });
    core = (await open()).ioasd;
    expect(core.ioas.get(admin, a).mappings.find(0x100000n)?.userAddress).toBe(0x5000n);
  });
  it('a stop that cannot write the copy still closes the database, says so in the log, and the next start reads the rows', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ioasd-snapshot-'));
    const core = (await open()).ioasd;
    fill(core);
    const want = state(core);
    // The disk refuses the copy: every row written to it fails.
    core.db.exec("CREATE TRIGGER refuse_copy BEFORE INSERT ON mapping_snapshot BEGIN SELECT RAISE(ABORT, 'disk full'); END");
    let log = '';
    const stream = new Writable({ write: (chunk, _enc, done) => void ((log += String(chunk)), done()) });
    app!.log = createLogger('info', stream);
    await close();
    expect(core.db.open).toBe(false);
    expect(log).toContain('mapping rows not packed: the next start reads them one by one');
    expect(log).toContain('disk full');
    onDisk((db) => {
      expect(copyRows(db)).toEqual({ parts: 0, rows: 0 });
      db.exec('DROP TRIGGER refuse_copy');
    });
    const again = (await open()).ioasd;
    expect(state(again)).toBe(want);
    expect(again.check().ok).toBe(true);
  });
});

/**
 * Any history of changes, with stops between: after a clean stop the next start reads the packed
 * copy; after a crash it reads what the last commits left (a copy still valid, or the rows). Either
 * way it rebuilds exactly the state the server had, and the self-check finds nothing. Refused
 * changes and dry runs in the history roll back and leave the copy as it was.
 */
describe('restarts after any history of changes (property)', () => {
  type Service = App['ioasd'];
  type Space = 'a' | 'b';
  type Op =
    | { op: 'map'; space: Space; page?: number; pages: number; user: number; write: boolean }
    | { op: 'batch'; space: Space; ranges: { page?: number; pages: number; user: number }[] }
    | { op: 'unmap'; space: Space; pick: number; pages: number }
    | { op: 'unmapAll'; space: Space }
    | { op: 'copy'; from: Space; pick: number; pages: number; to?: number; write: boolean }
    | { op: 'dryRun'; of: Op }
    | { op: 'stop'; crash: boolean };
  const PAGE = 0x1000n;
  const at = (page: number) => 0x10_0000n + BigInt(page) * PAGE;
  const space = fc.constantFrom<Space>('a', 'b');
  const page = fc.integer({ min: 0, max: 47 });
  const pages = fc.integer({ min: 1, max: 4 });
  const user = fc.integer({ min: 0, max: 2 ** 20 });
  /** Which mapping of a space an unmap or a copy starts at (the nth, counted round): most of them meet one. */
  const pick = fc.nat();
  const change: fc.Arbitrary<Op> = fc.oneof(
    { weight: 3, arbitrary: fc.record({ op: fc.constant('map' as const), space, page: fc.option(page, { nil: undefined }), pages, user, write: fc.boolean() }, { requiredKeys: ['op', 'space', 'pages', 'user', 'write'] }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('batch' as const), space, ranges: fc.array(fc.record({ page: fc.option(page, { nil: undefined }), pages, user }, { requiredKeys: ['pages', 'user'] }), { minLength: 1, maxLength: 5 }) }) },
    { weight: 2, arbitrary: fc.record({ op: fc.constant('unmap' as const), space, pick, pages: fc.integer({ min: 1, max: 12 }) }) },
    { weight: 1, arbitrary: fc.record({ op: fc.constant('unmapAll' as const), space }) },
    { weight: 3, arbitrary: fc.record({ op: fc.constant('copy' as const), from: space, pick, pages, to: fc.option(page, { nil: undefined }), write: fc.boolean() }, { requiredKeys: ['op', 'from', 'pick', 'pages', 'write'] }) },
  );
  const clean: Op = { op: 'stop', crash: false };
  const crash: Op = { op: 'stop', crash: true };
  // Steps of one or more operations: a crash right after the start that read a copy (nothing changed
  // the mappings since) is a way of its own, and rare unless asked for.
  const steps: fc.Arbitrary<Op[]> = fc.oneof(
    { weight: 6, arbitrary: change.map((o) => [o]) },
    { weight: 1, arbitrary: change.map((of): Op[] => [{ op: 'dryRun', of }]) },
    { weight: 2, arbitrary: fc.constantFrom<Op[]>([clean], [crash], [clean, crash]) },
  );

  /** Applies one change; a refusal (an overlap, nothing mapped there, a read-only source) is part of the history. */
  function apply(core: Service, ids: Record<Space, number>, o: Op): void {
    const other = (s: Space): Space => (s === 'a' ? 'b' : 'a');
    const nth = (s: Space, n: number): { iova: bigint; length: bigint } => {
      const all = [...core.ioas.get(admin, ids[s]).mappings.from()];
      return all.length === 0 ? { iova: at(0), length: PAGE } : all[n % all.length]!;
    };
    try {
      switch (o.op) {
        case 'map':
          core.mappings.map(admin, ids[o.space], { iova: o.page === undefined ? undefined : at(o.page), length: BigInt(o.pages) * PAGE, userAddress: BigInt(o.user) * PAGE, read: true, write: o.write });
          break;
        case 'batch':
          core.mappings.mapBatch(
            admin,
            ids[o.space],
            o.ranges.map((r) => ({ iova: r.page === undefined ? undefined : at(r.page), length: BigInt(r.pages) * PAGE, userAddress: BigInt(r.user) * PAGE, read: true, write: true })),
          );
          break;
        case 'unmap':
          core.mappings.unmap(admin, ids[o.space], { iova: nth(o.space, o.pick).iova, length: BigInt(o.pages) * PAGE });
          break;
        case 'unmapAll':
          core.mappings.unmap(admin, ids[o.space], { all: true });
          break;
        case 'copy': {
          // From the start of a mapping: all of it, or its first pages (pinned pages of another size than the copy).
          const src = nth(o.from, o.pick);
          const length = BigInt(o.pages) * PAGE < src.length ? BigInt(o.pages) * PAGE : src.length;
          core.mappings.copy(admin, ids[other(o.from)], { srcIoasId: ids[o.from], srcIova: src.iova, length, dstIova: o.to === undefined ? undefined : at(o.to), read: true, write: o.write });
          break;
        }
        case 'dryRun':
          core.tx.dryRun(() => apply(core, ids, o.of));
          break;
        case 'stop':
          break;
      }
    } catch (e) {
      if (!(e instanceof IoasdError)) throw e;
    }
  }

  it('every start rebuilds the state the server stopped with, from the copy or from the rows', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ioasd-snapshot-'));
    let run = 0;
    // How the starts went: each way must be taken, or the property says little.
    const starts = { 'clean stop, copy': 0, 'clean stop, rows': 0, 'crash, copy': 0, 'crash, rows': 0 };
    await fc.assert(
      fc.asyncProperty(fc.array(steps, { minLength: 4, maxLength: 25 }).map((s) => s.flat()), async (history) => {
        await close(); // a run that failed midway (while shrinking) left its server open
        const file = join(dir, `run-${run++}.db`);
        const start = async (): Promise<Service> => (app = await buildApp({ db: file, adminToken: ADMIN_TOKEN, leaseCheckMs: 0 })).ioasd;
        let core = await start();
        const ctx = core.contexts.create(admin, {});
        const ids = { a: core.ioas.create(admin, ctx.id).id, b: core.ioas.create(admin, ctx.id).id };
        for (const o of [...history, clean]) {
          if (o.op !== 'stop') {
            apply(core, ids, o);
            continue;
          }
          const want = state(core);
          // A crash writes no copy: here the stop's own write of it fails and is rolled back, so the
          // file holds what the last commits left (test/server/process.test.ts kills a real process).
          if (o.crash) core.db.exec("CREATE TEMP TRIGGER crash BEFORE INSERT ON mapping_snapshot BEGIN SELECT RAISE(ABORT, 'crashed'); END");
          await close();
          const disk = new Database(file);
          const copied = copyRows(disk).rows > 0;
          disk.close();
          starts[`${o.crash ? 'crash' : 'clean stop'}, ${copied ? 'copy' : 'rows'}`]++;
          core = await start();
          expect(state(core)).toBe(want);
          expect(core.check()).toMatchObject({ ok: true, violations: [] });
        }
        await close();
      }),
      {
        numRuns: 25,
        // Always run too: every way a start can go, in one history.
        examples: [
          [
            [
              { op: 'batch', space: 'a', ranges: [{ pages: 2, user: 1 }, { page: 9, pages: 1, user: 1 }] },
              { op: 'copy', from: 'a', pick: 0, pages: 1, write: true },
              clean,
              crash,
              { op: 'dryRun', of: { op: 'unmapAll', space: 'a' } },
              crash,
              { op: 'unmap', space: 'a', pick: 1, pages: 1 },
              crash,
              { op: 'unmapAll', space: 'a' },
              { op: 'unmapAll', space: 'b' },
              clean,
            ],
          ],
        ],
      },
    );
    // A clean stop with mappings packs them; one with none leaves no copy. A crash leaves the copy
    // when nothing changed the mappings since the start that read it, and the rows otherwise.
    for (const [way, count] of Object.entries(starts)) expect(count, way).toBeGreaterThan(0);
  });
});

describe('packing (store level)', () => {
  type Row = [number, bigint, bigint, bigint, number, number, bigint | null];
  const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  const rowArb = fc.tuple(fc.integer({ min: 1, max: 2 ** 32 - 1 }), u64, u64, u64, fc.integer({ min: 0, max: 7 }), fc.integer({ min: 1, max: 2 ** 40 }), fc.option(u64));

  function withRows(rows: readonly Row[], fn: (db: Db) => void): void {
    const { db } = openDatabase(':memory:');
    try {
      db.pragma('foreign_keys = OFF');
      const insert = db.prepare('INSERT OR IGNORE INTO mappings VALUES (?, ?, ?, ?, ?, ?, ?)');
      db.transaction(() => {
        for (const r of rows) insert.run(r[0], r[1] - OFFSET, r[2] - OFFSET, r[3] - OFFSET, r[4], r[5], r[6] === null ? null : r[6] - OFFSET);
      })();
      fn(db);
    } finally {
      db.close();
    }
  }
  /** The rows as the start-up sink receives them, from the table or from the copy. */
  function read(db: Db, from: 'copy' | 'table'): string[] {
    const out: string[] = [];
    const sink = (...r: unknown[]) => void out.push(r.map(String).join(' '));
    if (from === 'copy') expect(readMappingSnapshot(db, sink)).toBe(true);
    else {
      for (const r of db.prepare('SELECT * FROM mappings ORDER BY ioas_id, iova').raw().safeIntegers(true).iterate() as Iterable<bigint[]>) {
        const length = r[2]! + OFFSET;
        const f = Number(r[4]);
        sink(Number(r[0]), r[1]! + OFFSET, length, r[3]! + OFFSET, (f & 1) !== 0, (f & 2) !== 0, Number(r[5]), r[6] === null ? length : r[6]! + OFFSET, (f & 4) !== 0);
      }
    }
    return out;
  }

  it('hands back every row exactly, in order: any u64, absent and present page sizes, flags', () => {
    fc.assert(
      fc.property(fc.array(rowArb, { minLength: 1, maxLength: 200 }), (rows) => {
        withRows(rows, (db) => {
          const table = read(db, 'table');
          expect(writeMappingSnapshot(db)).toBe(table.length);
          expect(read(db, 'copy')).toEqual(table);
          expect(mappingSnapshotProblems(db)).toEqual([]);
        });
      }),
      { numRuns: 60 },
    );
  });

  it('splits a large table into parts and reads them back in order; an empty table writes nothing; a present copy is kept', () => {
    const n = PART_ROWS + 1000;
    const rows: Row[] = Array.from({ length: n }, (_, i) => [1 + (i % 3), BigInt(i) << 12n, 0x1000n, (1n << 63n) + BigInt(i), 3, i + 1, i % 5 === 0 ? 0x4000n : null]);
    withRows(rows, (db) => {
      expect(writeMappingSnapshot(db)).toBe(n);
      expect(db.prepare('SELECT part, rows FROM mapping_snapshot ORDER BY part').raw().all()).toEqual([
        [0, PART_ROWS],
        [1, 1000],
      ]);
      expect(read(db, 'copy')).toEqual(read(db, 'table'));
      expect(writeMappingSnapshot(db)).toBe(0);
    });
    // Exactly one full part; the largest ioas id the column holds.
    withRows(
      Array.from({ length: PART_ROWS }, (_, i): Row => [i < 10 ? 0xffffffff : 7, BigInt(i) << 12n, 0x1000n, (1n << 64n) - 1n - BigInt(i), 1, 2 ** 53 - 1 - i, null]),
      (db) => {
        expect(writeMappingSnapshot(db)).toBe(PART_ROWS);
        expect(db.prepare('SELECT part, rows FROM mapping_snapshot').raw().all()).toEqual([[0, PART_ROWS]]);
        expect(read(db, 'copy')).toEqual(read(db, 'table'));
      },
    );
    // An ioas id past the 32-bit column is refused, not wrapped onto another space; nothing is written.
    withRows([[2 ** 32, 0x1000n, 0x1000n, 0n, 3, 1, null]], (db) => {
      expect(() => writeMappingSnapshot(db)).toThrow(/does not fit/);
      expect(db.prepare('SELECT count(*) FROM mapping_snapshot').pluck().get()).toBe(0);
    });
    withRows([], (db) => {
      expect(writeMappingSnapshot(db)).toBe(0);
      expect(readMappingSnapshot(db, () => undefined)).toBe(false);
    });
  });
});
