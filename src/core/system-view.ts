import type { InventoryState } from './inventory-state.js';
import type { WarningSummary } from './isolation.js';
import type { Iommu, PolicyName } from './model.js';
import type { PrincipalState } from './principal-state.js';

/** What GET /v1/system summarizes: the policy in force, the iommu, counts and the isolation warnings. */
export interface SystemSummary {
  policy: PolicyName;
  iommu: Iommu;
  counts: { groups: number; devices: number; principals: number };
  warnings: WarningSummary;
}

/**
 * The system view, derived from memory (the inventory, the principals, the policy) and kept until one
 * of them changes: each change bumps what it is keyed on, so the next read derives it again. The
 * same object is answered while nothing changed, so a reader may cache what it makes of it.
 */
export class SystemView {
  private cached: { summary: SystemSummary; inventory: number; principals: number } | null = null;

  constructor(
    private readonly inventory: InventoryState,
    private readonly principals: PrincipalState,
    private readonly policy: () => PolicyName,
  ) {}

  summary(): SystemSummary {
    const policy = this.policy();
    const c = this.cached;
    if (c && c.summary.policy === policy && c.inventory === this.inventory.version && c.principals === this.principals.version) return c.summary;
    const summary: SystemSummary = Object.freeze({
      policy,
      iommu: this.inventory.getIommu(),
      counts: Object.freeze({ ...this.inventory.counts(), principals: this.principals.count }),
      warnings: this.inventory.warningSummary(),
    });
    this.cached = { summary, inventory: this.inventory.version, principals: this.principals.version };
    return summary;
  }
}
