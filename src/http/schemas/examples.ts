import { fromDocument, topologyOut } from '../../schemas/topology.js';
import { demoTopology } from '../../topology/demo.js';

/**
 * One working example per operation, for Swagger UI's "Try it out" against the demo topology
 * (SPEC 9) with the admin token, under the default policy (device-first).
 *
 * Ids the examples cannot know in advance: ioas and hwpt ids are allocated lowest-free from 1, so
 * on a fresh server the first ioas is 1, the automatic hwpt of the first attach 2, the next manual
 * hwpt 3. Context and principal ids are random, so an example naming one holds a placeholder that
 * says where the real id comes from ({@link CONTEXT_PLACEHOLDER}); that operation answers 404
 * ENOENT until the id is pasted in. The order that works from a fresh server (test/http/examples.test.ts
 * runs it, substituting only those placeholders) is {@link TRY_IT_ORDER}.
 */
export interface OperationExample {
  params?: Record<string, unknown>;
  query?: Record<string, unknown>;
  body?: unknown;
}

/** Stands for the id POST /v1/contexts answered. */
export const CONTEXT_PLACEHOLDER = 'ctx-from-createContext';
/** Stands for the id POST /v1/principals answered. */
export const PRINCIPAL_PLACEHOLDER = 'p-from-createPrincipal';

/** A VF of the demo NIC, alone in group 3, on vfio-pci, labelled tenant-a: the device to hand out. */
const VF = '0000:02:01.0';
const VF_GROUP = 3;
/** A mediated device the addDevice example plugs in (and deleteDevice takes out again). */
const NEW_MDEV = 'c0ffee00-0000-4000-8000-000000000003';

export const EXAMPLES: Record<string, OperationExample> = {
  // ---- system, principals, inventory (admin) --------------------------------------------------
  setPolicy: { body: { policy: 'group-first', dryRun: true } },
  createPrincipal: { body: { name: 'alice', role: 'user', clearances: ['tenant-a'], quotas: { maxIoas: 16, maxPinnedBytes: '0x40000000' } } },
  getPrincipal: { params: { id: 'admin' } },
  // The admin needs clearance for the demo's labels before it can own a labelled device itself.
  updatePrincipal: { params: { id: 'admin' }, body: { clearances: ['tenant-a', 'tenant-b', 'shared'] } },
  deletePrincipal: { params: { id: PRINCIPAL_PLACEHOLDER } },
  // Importing the inventory the server already has: a no-op replace that shows the document's form.
  putTopology: { query: { mode: 'replace' }, body: topologyOut(fromDocument(demoTopology()).topology) },
  getGroup: { params: { id: VF_GROUP } },
  listDevices: { query: { kind: 'vf', free: 'true' } },
  addDevice: {
    body: { id: NEW_MDEV, kind: 'mdev', groupId: 102, parentId: '0000:05:00.0', driver: 'vfio_mdev', label: 'tenant-a', description: 'mediated vGPU instance 3' },
  },
  getDevice: { params: { id: VF } },
  deleteDevice: { params: { id: NEW_MDEV } },
  // VF 3 leaves host networking (iavf) for vfio-pci.
  setDeviceDriver: { params: { id: '0000:02:01.3' }, body: { driver: 'vfio-pci' } },
  listAudit: { query: { after: 0, limit: 100 } },
  // Every event kept, from the oldest: what a client does first, before it follows with Last-Event-ID.
  streamEvents: { query: { after: 0 } },
  // What a rescan would change, changing nothing (needs a server started with --sysfs).
  rescanTopology: { query: { dryRun: true } },

  // ---- contexts and address spaces ------------------------------------------------------------
  createContext: { body: { name: 'demo', leaseSeconds: 3600 } },
  getContext: { params: { id: CONTEXT_PLACEHOLDER } },
  renewContext: { params: { id: CONTEXT_PLACEHOLDER }, body: { leaseSeconds: 3600 } },
  deleteContext: { params: { id: CONTEXT_PLACEHOLDER } },
  createIoas: { body: { contextId: CONTEXT_PLACEHOLDER } },
  getIoas: { params: { id: 1 } },
  deleteIoas: { params: { id: 1 } },
  getIovaRanges: { params: { id: 1 } },
  setAllowedRanges: { params: { id: 1 }, body: { ranges: [{ start: '0x100000', last: '0xfedfffff' }] } },
  listMappings: { params: { id: 1 }, query: { limit: 100 } },
  map: { params: { id: 1 }, body: { iova: '0x100000', length: '0x200000', userAddress: '0x7f0000000000', read: true, write: true } },
  mapBatch: {
    params: { id: 1 },
    body: {
      mappings: [
        { length: '0x1000', userAddress: '0x7f0000400000', read: true, write: false },
        { length: '0x2000', userAddress: '0x7f0000800000', read: true, write: true },
      ],
    },
  },
  copy: { params: { id: 1 }, body: { srcIoasId: 1, srcIova: '0x100000', length: '0x1000', read: true, write: false } },
  unmap: { params: { id: 1 }, body: { iova: '0x100000', length: '0x200000' } },

  // ---- device-first ---------------------------------------------------------------------------
  bindDevice: { params: { id: VF }, body: { contextId: CONTEXT_PLACEHOLDER } },
  attachDevice: { params: { id: VF }, body: { ptId: 1 } },
  detachDevice: { params: { id: VF }, body: {} },
  unbindDevice: { params: { id: VF } },
  allocHwpt: { body: { deviceId: VF, ioasId: 1, nestParent: true } },
  getHwpt: { params: { id: 2 } },
  deleteHwpt: { params: { id: 3 } },

  // ---- group-first (after PUT /v1/system/policy {policy: "group-first"}) ----------------------
  openGroup: { params: { id: VF_GROUP }, body: { contextId: CONTEXT_PLACEHOLDER } },
  setContainer: { params: { id: VF_GROUP }, body: { ioasId: 1 } },
  openGroupDevice: { params: { id: VF_GROUP, deviceId: VF } },
  closeGroupDevice: { params: { id: VF_GROUP, deviceId: VF } },
  unsetContainer: { params: { id: VF_GROUP } },
  closeGroup: { params: { id: VF_GROUP } },
};

/**
 * An order in which every example succeeds from a fresh server, once the placeholders hold the ids
 * createContext and createPrincipal answered. Operations without parameters or body (lists, gets
 * of the system) succeed anywhere and are left out. streamEvents answers a stream that stays open:
 * it succeeds when the stream starts.
 */
export const TRY_IT_ORDER = {
  deviceFirst: [
    'setPolicy', 'createPrincipal', 'getPrincipal', 'updatePrincipal', 'deletePrincipal', 'putTopology', 'getGroup', 'listDevices',
    'addDevice', 'getDevice', 'deleteDevice', 'setDeviceDriver', 'listAudit',
    'createContext', 'getContext', 'renewContext', 'createIoas', 'getIoas', 'getIovaRanges',
    'bindDevice', 'attachDevice', 'getHwpt', 'map', 'listMappings', 'setAllowedRanges', 'mapBatch', 'copy', 'unmap',
    'allocHwpt', 'deleteHwpt', 'detachDevice', 'unbindDevice', 'deleteIoas', 'deleteContext',
  ],
  /** After switching to group-first (the setPolicy example without dryRun). */
  groupFirst: ['createContext', 'createIoas', 'openGroup', 'setContainer', 'openGroupDevice', 'closeGroupDevice', 'map', 'unsetContainer', 'closeGroup', 'deleteIoas', 'deleteContext', 'streamEvents'],
  /** On a server started with --sysfs: the demo has no host to re-read (422 EOPNOTSUPP). */
  withHost: ['rescanTopology'],
} as const;
