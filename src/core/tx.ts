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
 * A commit of a group failed: every change of the group was undone (database and memory), nothing
 * of it is kept. `cause` is the store's error.
 */
export class CommitFailed extends Error {
  constructor(override readonly cause: unknown) {
    super(`the change could not be made durable (the commit failed: ${cause instanceof Error ? cause.message : String(cause)}); nothing of it was kept`);
    this.name = 'CommitFailed';
  }
}

/** Schedules a callback after the current turn of the event loop (setImmediate). */
export type Defer = (flush: () => void) => void;

/**
 * The changes of one turn: they share one store transaction and one commit. Each change ran in a
 * savepoint of its own (a refused one rolled back to it); `durable` settles when the commit has
 * returned: resolved, or rejected with {@link CommitFailed} after every change of the group was undone.
 */
export class CommitGroup {
  readonly undo = new UndoLog();
  /** The first event seq written in this group (0 while it wrote none): readers stop before it. */
  firstSeq = 0;
  lastSeq = 0;
  readonly durable: Promise<void>;
  settle!: (err?: CommitFailed) => void;

  constructor() {
    this.durable = new Promise<void>((resolve, reject) => {
      this.settle = (err) => (err ? reject(err) : resolve());
    });
    // A group nobody waits on must not end the process with an unhandled rejection.
    this.durable.catch(() => {});
  }
}

/**
 * The one way the core changes anything: a change runs in one store transaction with its audit row
 * and its events, registering the inverse of every memory change in the undo log, so a refusal
 * part-way or a failed commit leaves memory exactly as the database. Nested runs join the outer one.
 * A dry run is the same run, rolled back at the end: it answers what the change would do.
 *
 * Group commit ({@link groupCommits}, turned on by the server): the changes of one event-loop turn
 * share one transaction and one commit (one fsync), each in a savepoint of its own. A change's
 * result is then returned before it is durable: whoever acknowledges it waits for
 * {@link pending}'s `durable` first. A failed commit undoes the memory of every change of the group.
 */
export class Tx {
  private undo: UndoLog | null = null;
  private events: CoreEvent[] | null = null;
  private render: StateRenderer = () => null;
  private readonly stateOf = (e: CoreEvent): unknown => (e.gone ? null : this.render(e));
  private readonly listeners = new Set<(lastSeq: number) => void>();
  private defer: Defer | null = null;
  private group: CommitGroup | null = null;

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

  /**
   * Turns group commit on (`defer` schedules the commit after the turn, e.g. setImmediate) or, with
   * null, off after committing what is open.
   */
  groupCommits(defer: Defer | null): void {
    if (defer === null) this.flush();
    this.defer = defer;
  }

  /** The group whose commit is still to come, if any: an answer that read or changed state waits for it. */
  get pending(): CommitGroup | null {
    return this.group;
  }

  /** Events from this seq on are not committed yet (Infinity: all written are). */
  get uncommittedFrom(): number {
    return this.group && this.group.firstSeq > 0 ? this.group.firstSeq : Infinity;
  }

  /** Commits the open group now (the deferred call, or a shutdown). */
  flush(): void {
    const group = this.group;
    if (!group) return;
    this.group = null;
    try {
      this.port.commit();
    } catch (err) {
      // The store has rolled the transaction back; memory follows, newest change first.
      group.undo.rollbackTo(0);
      group.settle(new CommitFailed(err));
      return;
    }
    group.settle();
    if (group.lastSeq > 0) for (const l of this.listeners) l(group.lastSeq);
  }

  run<T>(change: (undo: UndoLog) => T, audit?: AuditNote<T>): T {
    const outermost = this.undo === null;
    let group: CommitGroup | null = null;
    if (outermost && this.defer) {
      group = this.group;
      if (!group) {
        this.port.begin();
        group = this.group = new CommitGroup();
        this.defer(() => this.flush());
      }
    }
    const undo = this.undo ?? group?.undo ?? new UndoLog();
    const events = this.events ?? [];
    const mark = undo.mark();
    const eventMark = events.length;
    this.undo = undo;
    this.events = events;
    let firstSeq = 0;
    let lastSeq = 0;
    try {
      // In a group, the store's transaction is a savepoint of the group's transaction.
      const result = this.port.transaction(() => {
        const result = change(undo);
        if (audit) {
          const target = typeof audit.target === 'function' ? audit.target(result) : audit.target;
          const detail = typeof audit.detail === 'function' ? (audit.detail as (r: T) => unknown)(result) : audit.detail;
          this.port.audit({ actor: audit.actor, action: audit.action, target, ...(detail === undefined ? {} : { detail }) });
        }
        if (outermost && events.length > 0) {
          // One pass for all of them; their seqs are consecutive.
          lastSeq = this.port.appendEvents(events, this.stateOf);
          firstSeq = lastSeq - events.length + 1;
        }
        return result;
      });
      if (outermost && lastSeq > 0) {
        if (group) {
          group.firstSeq ||= firstSeq;
          group.lastSeq = lastSeq;
        } else for (const l of this.listeners) l(lastSeq);
      }
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
