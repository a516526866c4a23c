import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { MAX_VARIABLES, MultiInsert } from '../../src/store/multi-insert.js';

function table(): Database.Database {
  const db = new Database(':memory:');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, a INTEGER NOT NULL UNIQUE, b TEXT)');
  return db;
}

const rows = (from: number, count: number): unknown[] => Array.from({ length: count }, (_, i) => [from + i, `r${from + i}`]).flat();

/** Counts the statements a MultiInsert runs, by size in rows, through a wrapped prepare. */
function counting(db: Database.Database): { runs: number[]; prepared: number[] } {
  const seen = { runs: [] as number[], prepared: [] as number[] };
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const rowsIn = (sql.match(/\(\?, \?\)/g) ?? []).length;
    seen.prepared.push(rowsIn);
    const s = prepare(sql);
    const run = s.run.bind(s);
    s.run = ((...args: unknown[]) => {
      seen.runs.push(rowsIn);
      return run(...args);
    }) as typeof s.run;
    return s;
  }) as typeof db.prepare;
  return seen;
}

describe('MultiInsert', () => {
  it('writes every row in order, in chunks of powers of two, each statement prepared once', () => {
    const db = table();
    const seen = counting(db);
    const insert = new MultiInsert(db, 'INSERT INTO t (a, b)', 2, { maxRows: 512 });
    expect(insert.run(rows(0, 1000), 1000)).toBe(1000);
    expect(seen.runs).toEqual([512, 256, 128, 64, 32, 8]);
    expect(insert.run(rows(1000, 1300), 1300)).toBe(2300);
    expect(seen.runs.slice(6)).toEqual([512, 512, 256, 16, 4]);
    // Sizes seen before are not prepared again.
    expect(seen.prepared).toEqual([512, 256, 128, 64, 32, 8, 16, 4]);
    expect(db.prepare('SELECT a FROM t ORDER BY id').pluck().all()).toEqual(Array.from({ length: 2300 }, (_, i) => i));
    expect(db.prepare('SELECT b FROM t WHERE a = 1999').pluck().get()).toBe('r1999');
  });

  it('answers 0 for no rows and refuses values that do not make whole rows', () => {
    const db = table();
    const insert = new MultiInsert(db, 'INSERT INTO t (a, b)', 2);
    expect(insert.run([], 0)).toBe(0);
    expect(() => insert.run([1, 'x', 2], 2)).toThrow(/3 values for 2 rows of 2/);
  });

  it('keeps every statement under the limit on parameters', () => {
    const columns = 300;
    const db = new Database(':memory:');
    db.exec(`CREATE TABLE w (${Array.from({ length: columns }, (_, i) => `c${i} INTEGER`).join(', ')})`);
    const insert = new MultiInsert(db, `INSERT INTO w (${Array.from({ length: columns }, (_, i) => `c${i}`).join(', ')})`, columns, { maxRows: 4096 });
    const count = 200;
    insert.run(Array.from({ length: count * columns }, (_, i) => i), count);
    expect(db.prepare('SELECT count(*) FROM w').pluck().get()).toBe(count);
    // 64 rows of 300 would be 19,200 parameters, 128 rows 38,400: past the limit.
    expect(64 * columns).toBeLessThanOrEqual(MAX_VARIABLES);
    expect(128 * columns).toBeGreaterThan(MAX_VARIABLES);
  });

  it('binds named values once per statement for every row', () => {
    const db = new Database(':memory:');
    db.exec('CREATE TABLE e (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT, owner TEXT, x INTEGER, kind2 TEXT)');
    const insert = new MultiInsert(db, 'INSERT INTO e (kind, owner, x, kind2)', 1, { row: '(@kind, @owner, ?, @kind)', named: 2, maxRows: 4 });
    expect(insert.run([1, 2, 3, 4, 5, 6, 7], 7, { kind: 'k', owner: 'o' })).toBe(7);
    expect(db.prepare('SELECT kind, owner, x, kind2 FROM e ORDER BY id').raw().all()).toEqual(Array.from({ length: 7 }, (_, i) => ['k', 'o', i + 1, 'k']));
  });

  it('in a transaction, a row refused in a later chunk leaves nothing of the earlier ones', () => {
    const db = table();
    db.prepare("INSERT INTO t (a, b) VALUES (900, 'there')").run();
    const insert = new MultiInsert(db, 'INSERT INTO t (a, b)', 2, { maxRows: 512 });
    // Rows 0..999: the chunk of 256 (512..767) passes, the one of 128 (768..895) too, the one of 64 holds 900.
    expect(() => db.transaction(() => insert.run(rows(0, 1000), 1000))()).toThrow(/UNIQUE/);
    expect(db.prepare('SELECT a FROM t').pluck().all()).toEqual([900]);
  });
});
