import type { Caller } from '../caller.js';
import { fail } from '../errors.js';
import type { PolicyName } from '../model.js';
import type { SystemPort } from '../ports.js';
import { DeviceFirst } from './device-first.js';
import { GroupFirst } from './group-first.js';
import type { Hwpts } from './hwpts.js';
import type { PolicyDeps } from './types.js';

export interface PolicySwitch {
  policy: PolicyName;
  previous: PolicyName;
  changed: boolean;
  dryRun: boolean;
}

/**
 * The policy engine: one object table, two policies over it, one of them in force. Routes of the
 * other policy answer EOPNOTSUPP; the policy changes only while nothing is held, so the two never
 * hold anything at the same time.
 */
export class PolicyEngine {
  private readonly groupFirstPolicy: GroupFirst;
  private readonly deviceFirstPolicy: DeviceFirst;

  constructor(
    private readonly deps: PolicyDeps,
    private readonly system: SystemPort,
  ) {
    this.groupFirstPolicy = new GroupFirst(deps);
    this.deviceFirstPolicy = new DeviceFirst(deps);
  }

  get state(): PolicyDeps['state'] {
    return this.deps.state;
  }

  /** Start-up: both policies' objects back from the store (only one of them has any). */
  restore(): void {
    this.deviceFirstPolicy.restore();
    this.groupFirstPolicy.restore();
  }

  get policy(): PolicyName {
    return this.system.getPolicy() ?? 'device-first';
  }

  groupFirst(): GroupFirst {
    if (this.policy !== 'group-first') fail('EOPNOTSUPP', 'this is a group-first operation; the server runs device-first');
    return this.groupFirstPolicy;
  }

  deviceFirst(): DeviceFirst {
    if (this.policy !== 'device-first') fail('EOPNOTSUPP', 'this is a device-first operation; the server runs group-first');
    return this.deviceFirstPolicy;
  }

  /** Views that answer whatever the policy (simply empty under group-first). */
  get deviceFirstView(): DeviceFirst {
    return this.deviceFirstPolicy;
  }

  get groupFirstView(): GroupFirst {
    return this.groupFirstPolicy;
  }

  get hwpts(): Hwpts {
    return this.deviceFirstPolicy.hwpts;
  }

  /** PUT /system/policy: refused EBUSY, with blockers, while any group is open or any device bound (a dry run is Tx.dryRun of it). */
  setPolicy(caller: Caller | null, policy: PolicyName): PolicySwitch {
    const previous = this.policy;
    const blockers = previous === policy ? [] : this.deps.state.holdings(caller);
    if (blockers.length > 0) {
      fail('EBUSY', `the policy cannot change while ${blockers.length} group(s) or device(s) are held`, { blockers });
    }
    if (previous === policy) return { policy, previous, changed: false, dryRun: false };
    this.deps.tx.run(
      () => {
        this.system.setPolicy(policy);
        this.deps.tx.emit({ type: 'policy.changed', object: { kind: 'policy', id: 'policy' }, scope: 'inventory', principalId: null, contextId: null, detail: { from: previous, to: policy } });
      },
      { actor: caller?.id ?? null, action: 'system.policy', target: `policy:${policy}` },
    );
    return { policy, previous, changed: true, dryRun: false };
  }
}
