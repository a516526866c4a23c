import type { CoreEvent } from './events.js';
import type { AuditPort, EventPort, TxPort } from './ports.js';

/** The inverse of one memory change: a function, or a record that undoes itself (no closure per change). */
export type UndoStep = (() => void) | { undo(): void };

/**
 * Memory changes made during a mutation, undone in reverse when the mutation (or its commit) fails,
 * so memory always equals the database. Nested transactions share the outer log and roll back to
 * their own mark.
 */
export class UndoLog {
  private readonly steps: UndoStep[] = [];

  push(step: UndoStep): void {
    this.steps.push(step);
  }

  /** A position to roll back to. */
  mark(): number {
    return this.steps.length;
  }

  /** Undoes every step after `mark`, newest first. */
  rollbackTo(mark = 0): void {
    for (let i = this.steps.length - 1; i >= mark; i--) {
      const step = this.steps[i]!;
      if (typeof step === 'function') step();
      else step.undo();
    }
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

/** Renders an event's object as its GET shows it (the HTTP layer supplies it); null when gone. */
export type StateRenderer = (event: CoreEvent) => unknown;

/** Thrown inside a dry run's transaction to roll it back once the change has run. */
class DryRunRollback extends Error {}

/**
 * The one way the core changes anything: a change runs in one store transaction with its audit row
 * and its events, registering the inverse of every memory change in the undo log, so a refusal
 * part-way or a failed commit leaves memory exactly as the database. Nested runs join the outer one.
 * A dry run is the same run, rolled back at the end: it answers what the change would do.
 */
export class Tx {
  private undo: UndoLog | null = null;
  private events: CoreEvent[] | null = null;
  private render: StateRenderer = () => null;
  private readonly stateOf = (e: CoreEvent): unknown => (e.gone ? null : this.render(e));
  private readonly listeners = new Set<(lastSeq: number) => void>();

  constructor(private readonly port: TxPort & AuditPort & EventPort) {}

  /** How committed events get their state (set once by the HTTP layer). */
  renderStateWith(render: StateRenderer): void {
    this.render = render;
  }

  /** Called after every commit that wrote events, with the last seq written. */
  onCommit(listener: (lastSeq: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records an event of the change under way (outside a change, e.g. a restart rebuilding memory, nothing is recorded). */
  emit(event: CoreEvent): void {
    this.events?.push(event);
  }

  /** Whether a change is under way. */
  get active(): boolean {
    return this.undo !== null;
  }

  run<T>(change: (undo: UndoLog) => T, audit?: AuditNote<T>): T {
    const outermost = this.undo === null;
    const undo = this.undo ?? new UndoLog();
    const events = this.events ?? [];
    const mark = undo.mark();
    const eventMark = events.length;
    this.undo = undo;
    this.events = events;
    let lastSeq = 0;
    try {
      const result = this.port.transaction(() => {
        const result = change(undo);
        if (audit) {
          const target = typeof audit.target === 'function' ? audit.target(result) : audit.target;
          const detail = typeof audit.detail === 'function' ? (audit.detail as (r: T) => unknown)(result) : audit.detail;
          this.port.audit({ actor: audit.actor, action: audit.action, target, ...(detail === undefined ? {} : { detail }) });
        }
        if (outermost && events.length > 0) lastSeq = this.port.appendEvents(events, this.stateOf);
        return result;
      });
      if (outermost && lastSeq > 0) for (const l of this.listeners) l(lastSeq);
      return result;
    } catch (err) {
      undo.rollbackTo(mark);
      events.length = eventMark;
      throw err;
    } finally {
      if (outermost) {
        this.undo = null;
        this.events = null;
      }
    }
  }

  /**
   * Runs the change exactly as {@link run} would, then rolls everything back (database and memory):
   * the same refusal, or the result and the events the change would have committed.
   */
  dryRun<T>(change: () => T): { result: T; events: CoreEvent[] } {
    if (this.undo !== null) throw new Error('a dry run cannot be nested in a change');
    let captured: { result: T; events: CoreEvent[] } | null = null;
    try {
      this.run(() => {
        const result = change();
        captured = { result, events: [...this.events!] };
        throw new DryRunRollback();
      });
    } catch (err) {
      if (!(err instanceof DryRunRollback)) throw err;
    }
    return captured!;
  }
}
