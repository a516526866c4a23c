import type { Operation } from './spec.js';

/**
 * How each operation reads on the command line: `ioasctl <resource> <verb> [ARGS] [--flags]`.
 * The OpenAPI document supplies everything else (path parameters become positional arguments,
 * query parameters and body fields become flags, --dry-run and --idempotency-key where the
 * operation takes them). An operation missing here still gets a command, named from its tag and
 * operationId (rescanTopology under tag topology: `ioasctl topology rescan`); a test checks that
 * every entry here names an operation of the served document and that no two commands collide.
 */
export interface CommandShape {
  /** The words after `ioasctl`. */
  words: string[];
  /** Body fields taken as positional arguments after the path parameters, in order. */
  args?: string[];
  /** The first positional argument is a file holding the JSON body (`-` for standard input). */
  bodyFile?: boolean;
  /** Columns of the table for a list, in order. */
  columns?: string[];
  /** Runs something other than one request and one answer. */
  custom?: 'events' | 'backup';
}

const DEVICE_COLUMNS = ['id', 'kind', 'groupId', 'driver', 'label', 'parentId', 'description'];
const GROUP_COLUMNS = ['id', 'kind', 'devices', 'viable', 'owner', 'blockers', 'warnings'];

export const SHAPES: Readonly<Record<string, CommandShape>> = {
  getHealth: { words: ['health'] },
  getReadiness: { words: ['ready'] },
  whoami: { words: ['whoami'] },
  getSystem: { words: ['system', 'show'] },
  setPolicy: { words: ['system', 'set-policy'], args: ['policy'] },
  checkSystem: { words: ['system', 'check'] },
  backupDatabase: { words: ['system', 'backup'], custom: 'backup' },

  listPrincipals: { words: ['principals', 'list'], columns: ['id', 'name', 'role', 'clearances', 'createdAt'] },
  createPrincipal: { words: ['principals', 'create'], args: ['name'] },
  getPrincipal: { words: ['principals', 'get'] },
  updatePrincipal: { words: ['principals', 'update'] },
  deletePrincipal: { words: ['principals', 'delete'] },

  getTopology: { words: ['topology', 'export'] },
  putTopology: { words: ['topology', 'import'], bodyFile: true },

  listGroups: { words: ['groups', 'list'], columns: GROUP_COLUMNS },
  getGroup: { words: ['groups', 'get'] },
  openGroup: { words: ['groups', 'open'] },
  closeGroup: { words: ['groups', 'close'] },
  setContainer: { words: ['groups', 'set-container'], args: ['ioasId'] },
  unsetContainer: { words: ['groups', 'unset-container'] },
  openGroupDevice: { words: ['groups', 'open-device'] },
  closeGroupDevice: { words: ['groups', 'close-device'] },

  listDevices: { words: ['devices', 'list'], columns: DEVICE_COLUMNS },
  addDevice: { words: ['devices', 'add'] },
  getDevice: { words: ['devices', 'get'] },
  deleteDevice: { words: ['devices', 'delete'] },
  setDeviceDriver: { words: ['devices', 'set-driver'], args: ['driver'] },
  bindDevice: { words: ['devices', 'bind'] },
  unbindDevice: { words: ['devices', 'unbind'] },
  attachDevice: { words: ['devices', 'attach'] },
  detachDevice: { words: ['devices', 'detach'] },

  listAudit: { words: ['audit', 'list'], columns: ['seq', 'at', 'actor', 'action', 'target', 'detail'] },

  listContexts: { words: ['contexts', 'list'], columns: ['id', 'name', 'principalId', 'leaseSeconds', 'expiresAt', 'ioas'] },
  createContext: { words: ['contexts', 'create'] },
  getContext: { words: ['contexts', 'get'] },
  deleteContext: { words: ['contexts', 'delete'] },
  renewContext: { words: ['contexts', 'renew'] },

  listIoas: { words: ['ioas', 'list'] },
  createIoas: { words: ['ioas', 'create'] },
  getIoas: { words: ['ioas', 'get'] },
  deleteIoas: { words: ['ioas', 'delete'] },
  getIovaRanges: { words: ['ioas', 'iova-ranges'] },
  setAllowedRanges: { words: ['ioas', 'set-allowed-ranges'] },
  listMappings: { words: ['ioas', 'mappings'] },
  map: { words: ['ioas', 'map'] },
  mapBatch: { words: ['ioas', 'map-batch'] },
  unmap: { words: ['ioas', 'unmap'] },
  copy: { words: ['ioas', 'copy'] },

  listHwpts: { words: ['hwpts', 'list'] },
  allocHwpt: { words: ['hwpts', 'alloc'] },
  getHwpt: { words: ['hwpts', 'get'] },
  deleteHwpt: { words: ['hwpts', 'delete'] },

  streamEvents: { words: ['events'], custom: 'events' },
};

/** Commands that are not one operation: built on several (see why.ts). */
export const COMPOSITE_COMMANDS = ['why'] as const;

export function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

/** The command of an operation the table does not name: `<tag> <operationId without the tag's words>`. */
export function derivedShape(op: Operation): CommandShape {
  const tag = kebab(op.tag);
  const singular = tag.replace(/s$/, '');
  const verb = kebab(op.operationId)
    .split('-')
    .filter((w) => w !== tag && w !== singular)
    .join('-');
  return { words: [tag, verb || op.method.toLowerCase()] };
}

export function shapeOf(op: Operation): CommandShape {
  return SHAPES[op.operationId] ?? derivedShape(op);
}

/** Flag names that read better than the field's own (`--context` for contextId). */
const FLAG_NAMES: Readonly<Record<string, string>> = {
  contextId: 'context',
  ioasId: 'ioas',
  ptId: 'pt',
  deviceId: 'device',
  parentId: 'parent',
  groupId: 'group',
  srcIoasId: 'src-ioas',
};

export function flagOf(field: string): string {
  return FLAG_NAMES[field] ?? kebab(field);
}
