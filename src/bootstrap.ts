import { backupDatabase, type BackupFile } from './store/backup.js';
import { chmodSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { checkInvariants, type CheckReport } from './core/check.js';
import { createCore, type Core } from './core/core.js';
import type { PolicyName, Topology } from './core/model.js';
import { fromDocument, topologyOut, type TopologyDocument } from './schemas/topology.js';
import { MEMORY, openDatabase, type Db } from './store/database.js';
import { nodeSecrets } from './store/secrets.js';
import { sqliteStore, type SqliteStore } from './store/sqlite-store.js';
import { demoTopology } from './topology/demo.js';
import { policyRefused } from './startup.js';

export interface BootstrapOptions {
  /** SQLite file, or ":memory:" (tests). */
  db: string;
  /** Policy for a new database, or an explicit choice at start. */
  policy?: PolicyName;
  /** Inventory to load at start (from --topology or --sysfs); without it a new database gets the demo. */
  topology?: TopologyDocument;
  /** Re-reads the host given with --sysfs, for POST /v1/topology/rescan (absent: no host to rescan). */
  hostScan?: () => TopologyDocument;
  /** Fixed admin token (IOASD_ADMIN_TOKEN); otherwise one is generated on first start. */
  adminToken?: string;
  /** IOASIDs are allocated from this range (default 1..2^31-1). */
  ioasidRange?: { min: number; max: number };
  /** Epoch milliseconds; tests pass a fake clock to run leases out. */
  now?: () => number;
}

/** The running service's state: the database, its store and the core built on it. */
export interface Services extends Core {
  db: Db;
  store: SqliteStore;
  /** Where the generated admin token was written on this start, if it was. */
  adminTokenFile: string | null;
  /** The --sysfs host reader (null: started without --sysfs, nothing to rescan). */
  hostScan: (() => TopologyDocument) | null;
  /** Every invariant over memory and the database (GET /v1/system/check). */
  check(): CheckReport;
  /** A consistent copy of the database in a file of its own (GET /v1/system/backup); commits what is open first. */
  backup(): BackupFile;
}

/**
 * Opens the database (taking the single-server lock), builds the core on it and brings inventory,
 * policy and the admin principal to a usable state; releases leases that ran out while down.
 */
export function bootstrap(options: BootstrapOptions): Services {
  const { db } = openDatabase(options.db);
  try {
    const store = sqliteStore(db);
    const coreOptions = { ioasidRange: options.ioasidRange, now: options.now ?? Date.now, secrets: nodeSecrets };
    const core = createCore(store, coreOptions);
    const { inventory, engine, principals, contexts } = core;
    if (options.topology) {
      // A document without iommu keeps the current capabilities, or on a new database the demo's
      // (a typical x86 IOMMU: 4K/2M/1G pages, 48-bit aperture, the MSI window reserved).
      const iommu = inventory.hasTopology() ? inventory.iommu() : fromDocument(demoTopology()).topology.iommu;
      const incoming = fromDocument(options.topology, iommu);
      // Reloading the same inventory is a no-op, so a restart with owned devices is not refused.
      const unchanged = inventory.hasTopology() && sameTopology(inventory.topology(), incoming.topology);
      // A host that changed while ioasd was down is taken over like a rescan (labels kept, owned devices guarded).
      if (!unchanged && options.hostScan && inventory.hasTopology()) core.rescan.apply(incoming.topology, null);
      else if (!unchanged) inventory.import({ ...incoming, mode: 'replace' }, null);
    } else if (!inventory.hasTopology()) {
      inventory.import({ ...fromDocument(demoTopology()), mode: 'replace' }, null);
    }
    // An explicit --policy applies like PUT /system/policy (refused while anything is held); without
    // one, the policy in force survives the restart.
    if (!store.getPolicy()) store.setPolicy(options.policy ?? 'device-first');
    else if (options.policy) {
      try {
        engine.setPolicy(null, options.policy);
      } catch (err) {
        throw policyRefused(err, options.policy, store.getPolicy() ?? null);
      }
    }

    const admin = principals.ensureBootstrapAdmin(options.adminToken, new Date().toISOString());
    let adminTokenFile: string | null = null;
    if (admin.token !== undefined && options.db !== MEMORY) {
      adminTokenFile = join(dirname(options.db), 'admin.token');
      writeFileSync(adminTokenFile, admin.token + '\n', { mode: 0o600 });
      chmodSync(adminTokenFile, 0o600); // the mode above is ignored when the file already existed
    }
    contexts.reapExpired();
    return { ...core, db, store, adminTokenFile, hostScan: options.hostScan ?? null, check: () => checkInvariants(core, () => createCore(store, coreOptions), store),
      backup: () => {
        core.tx.flush();
        return backupDatabase(db);
      },
    };
  } catch (err) {
    db.close();
    throw err;
  }
}

function sameTopology(a: Topology, b: Topology): boolean {
  const norm = (t: Topology) => {
    const out = topologyOut(t);
    return JSON.stringify({ ...out, groups: out.groups.map((g) => ({ ...g, devices: [...g.devices].sort() })).sort((x, y) => x.id - y.id), devices: [...out.devices].sort((x, y) => x.id.localeCompare(y.id)) });
  };
  return norm(a) === norm(b);
}
