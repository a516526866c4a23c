import type { Allocator, Caller, UndoLog } from '../allocator.js';
import { fail } from '../errors.js';
import type { PolicyName } from '../model.js';
import { OwnershipState } from '../ownership.js';
import type { Store } from '../ports.js';
import { DeviceFirst } from './device-first.js';
import { GroupFirst } from './group-first.js';

/**
 * What every ownership policy provides to the engine. Their operations differ (open/container vs
 * bind/attach) and are reached through {@link PolicyEngine.groupFirst} / {@link PolicyEngine.deviceFirst};
 * the rules they enforce are the shared ones of ownership.ts.
 */
export interface OwnershipPolicy {
  readonly name: PolicyName;
  /** Undoes, in dependency order, everything a context holds under this policy. */
  releaseContext(contextId: string, undo: UndoLog): void;
  /** Rebuilds this policy's state from the store at start-up. */
  restore(rows: ReturnType<Store['loadOwnership']>): void;
}

export interface PolicySwitch {
  policy: PolicyName;
  previous: PolicyName;
  changed: boolean;
  dryRun: boolean;
}

/**
 * The policy engine: one ownership state, two policies behind it, one of them in force. Routes of
 * the other policy answer EOPNOTSUPP; the policy changes only while nothing is held, so the two
 * never hold anything at the same time.
 */
export class PolicyEngine {
  readonly state: OwnershipState;
  private readonly groupFirstPolicy: GroupFirst;
  private readonly deviceFirstPolicy: DeviceFirst;

  constructor(
    private readonly store: Store,
    private readonly allocator: Allocator,
  ) {
    this.state = new OwnershipState(store);
    const deps = { store, allocator, state: this.state };
    this.groupFirstPolicy = new GroupFirst(deps);
    this.deviceFirstPolicy = new DeviceFirst(deps);
    const policies: OwnershipPolicy[] = [this.deviceFirstPolicy, this.groupFirstPolicy];
    // A context's bindings, hwpts and groups go before its address spaces (they hold them).
    allocator.onRelease((contextId, undo) => {
      for (const p of policies) p.releaseContext(contextId, undo);
    });
    const rows = store.loadOwnership();
    for (const p of policies) p.restore(rows);
  }

  get policy(): PolicyName {
    return this.store.getPolicy() ?? 'device-first';
  }

  groupFirst(): GroupFirst {
    if (this.policy !== 'group-first') fail('EOPNOTSUPP', 'this is a group-first operation; the server runs device-first');
    return this.groupFirstPolicy;
  }

  deviceFirst(): DeviceFirst {
    if (this.policy !== 'device-first') fail('EOPNOTSUPP', 'this is a device-first operation; the server runs group-first');
    return this.deviceFirstPolicy;
  }

  /** Hwpts and bindings are listed whatever the policy (they are simply empty under group-first). */
  get deviceFirstView(): DeviceFirst {
    return this.deviceFirstPolicy;
  }

  /** PUT /system/policy: refused EBUSY, with blockers, while any group is open or any device bound. */
  setPolicy(caller: Caller | null, policy: PolicyName, dryRun = false): PolicySwitch {
    const previous = this.policy;
    const blockers = previous === policy ? [] : this.state.holdings(caller);
    if (blockers.length > 0) {
      fail('EBUSY', `the policy cannot change while ${blockers.length} group(s) or device(s) are held`, { blockers });
    }
    if (dryRun || previous === policy) return { policy, previous, changed: false, dryRun };
    this.allocator.transact(
      () => this.store.setPolicy(policy),
      { actor: caller?.id ?? null, action: 'system.policy', target: `policy:${policy}` },
    );
    return { policy, previous, changed: true, dryRun };
  }
}
