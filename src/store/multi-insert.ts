import type Database from 'better-sqlite3';
import type { Db } from './database.js';

/** SQLite's limit on host parameters in one statement (SQLITE_MAX_VARIABLE_NUMBER, 32766 since 3.32). */
export const MAX_VARIABLES = 32766;

export interface MultiInsertOptions {
  /**
   * One row's values as SQL, when some are the same for every row of a call: named parameters
   * (`@at`) are bound once per statement from the object given to {@link MultiInsert.run}, `?` once
   * per row. Default: `columns` question marks.
   */
  row?: string;
  /** How many distinct named parameters `row` has. */
  named?: number;
  /** The largest chunk, in rows (default 512). */
  maxRows?: number;
}

/**
 * Many rows into one table with multi-row INSERTs (`INSERT INTO t (a, b) VALUES (?, ?), (?, ?), ...`):
 * one statement run per chunk instead of one per row. Chunks are whole powers of two of rows, up to
 * `maxRows`, so there are at most log2(maxRows) + 1 statements, each prepared once, on first use
 * (1,000 rows are 512 + 256 + 128 + 64 + 32 + 8: six runs), and every chunk stays under SQLite's
 * limit on parameters.
 */
export class MultiInsert {
  private readonly bySize = new Map<number, Database.Statement<unknown[]>>();
  private readonly row: string;
  private readonly maxRows: number;

  /** `into`: `INSERT INTO t (a, b, c)`; `columns`: how many values a row brings (its `?`s). */
  constructor(
    private readonly db: Db,
    private readonly into: string,
    private readonly columns: number,
    options: MultiInsertOptions = {},
  ) {
    this.row = options.row ?? `(${new Array<string>(columns).fill('?').join(', ')})`;
    const room = MAX_VARIABLES - (options.named ?? 0);
    let rows = 1;
    while (rows * 2 <= (options.maxRows ?? 512) && rows * 2 * columns <= room) rows *= 2;
    this.maxRows = rows;
  }

  /**
   * Inserts `count` rows whose values are laid out row after row in `values` (count * columns of
   * them), with `named` the values of the named parameters shared by every row. Answers the rowid of
   * the last row inserted (the last statement's), 0 when there are none.
   */
  run(values: readonly unknown[], count: number, named?: Record<string, unknown>): number {
    if (values.length !== count * this.columns) throw new Error(`MultiInsert: ${values.length} values for ${count} rows of ${this.columns}`);
    let last = 0;
    let row = 0;
    while (row < count) {
      let size = this.maxRows;
      while (size > count - row) size >>= 1;
      const from = row * this.columns;
      const chunk = size === count ? values : values.slice(from, from + size * this.columns);
      const info = named ? this.statement(size).run(chunk, named) : this.statement(size).run(chunk);
      last = Number(info.lastInsertRowid);
      row += size;
    }
    return last;
  }

  private statement(rows: number): Database.Statement<unknown[]> {
    let s = this.bySize.get(rows);
    if (!s) {
      s = this.db.prepare<unknown[]>(`${this.into} VALUES ${new Array<string>(rows).fill(this.row).join(', ')}`);
      this.bySize.set(rows, s);
    }
    return s;
  }
}
