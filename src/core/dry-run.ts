/**
 * A dry run (SPEC 10) runs the real change inside its transaction and then rolls it back, so what it
 * answers is what the real call would do, computed by the same code, and nothing stays behind.
 * Only for changes whose state lives entirely in the store (an undo log would be needed for memory).
 */
class DryRunRollback<T> {
  constructor(readonly value: T) {}
}

export function withRollback<T>(store: { transaction<R>(fn: () => R): R }, change: () => T): T {
  try {
    store.transaction(() => {
      throw new DryRunRollback(change());
    });
  } catch (err) {
    if (err instanceof DryRunRollback) return err.value as T;
    throw err;
  }
  throw new Error('unreachable: a dry run always rolls back');
}
