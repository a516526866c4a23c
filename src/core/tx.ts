import type { AuditPort, TxPort } from './ports.js';

/**
 * Memory changes made during a mutation, undone in reverse when the mutation (or its commit) fails,
 * so memory always equals the database. Nested transactions share the outer log and roll back to
 * their own mark.
 */
export class UndoLog {
  private readonly steps: (() => void)[] = [];

  push(step: () => void): void {
    this.steps.push(step);
  }

  /** A position to roll back to. */
  mark(): number {
    return this.steps.length;
  }

  /** Undoes every step after `mark`, newest first. */
  rollbackTo(mark = 0): void {
    for (let i = this.steps.length - 1; i >= mark; i--) this.steps[i]!();
    this.steps.length = mark;
  }
}

/** The audit row a change writes with itself; `target` and `detail` may depend on the result. */
export interface AuditNote<T> {
  actor: string | null;
  action: string;
  target: string | ((result: T) => string);
  detail?: unknown | ((result: T) => unknown);
}

/**
 * The one way the core changes anything: a change runs in one store transaction with its audit row,
 * registering the inverse of every memory change in the undo log, so a refusal part-way or a failed
 * commit leaves memory exactly as the database. Every service takes this instead of the store's
 * transaction.
 */
export class Tx {
  private current: UndoLog | null = null;

  constructor(private readonly port: TxPort & AuditPort) {}

  run<T>(change: (undo: UndoLog) => T, audit?: AuditNote<T>): T {
    const outer = this.current;
    const undo = outer ?? new UndoLog();
    const mark = undo.mark();
    this.current = undo;
    try {
      return this.port.transaction(() => {
        const result = change(undo);
        if (audit) {
          const target = typeof audit.target === 'function' ? audit.target(result) : audit.target;
          const detail = typeof audit.detail === 'function' ? (audit.detail as (r: T) => unknown)(result) : audit.detail;
          this.port.audit({ actor: audit.actor, action: audit.action, target, ...(detail === undefined ? {} : { detail }) });
        }
        return result;
      });
    } catch (err) {
      undo.rollbackTo(mark);
      throw err;
    } finally {
      this.current = outer;
    }
  }
}
