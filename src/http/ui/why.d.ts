// Types of why.js for TypeScript callers (ioasctl's `why`, the tests); the page loads why.js as is,
// and the build copies why.js (not this file) into dist/http/ui, where dist/cli/why.js imports it.

export interface ApiAnswer {
  status: number;
  body: unknown;
}
export type Api = (method: string, path: string, body?: unknown) => Promise<ApiAnswer>;

export interface WhyDevice {
  id: string;
  kind: string;
  groupId: number | null;
  parentId: string | null;
  driver: string;
  label: string | null;
  description?: string | null;
  warnings?: { code: string; deviceId?: string; detail: string }[];
}

export interface WhyGroup {
  id: number;
  devices: string[];
  owner: string | null;
  blockers: { kind: string; id: string; reason: string }[];
  warnings?: { code: string; deviceId?: string; detail: string }[];
}

export interface Principal {
  id: string;
  name: string;
  role: string;
  clearances: string[];
}

export interface Facts {
  deviceId: string;
  device: WhyDevice | null;
  problem?: unknown;
  me?: Principal;
  policy?: 'device-first' | 'group-first';
  groups?: WhyGroup[];
  devices?: WhyDevice[];
  contexts?: { id: string; principalId: string }[];
  context?: { id: string } | null;
  temporaryContext?: boolean;
  hostWarnings?: { code: string; detail: string }[];
  dryRun?: { method: string; path: string; contextId: string; status: number; body: unknown } | null;
}

export interface GatherOptions {
  /** The context to dry-run in (else the one holding the group, else the caller's oldest). */
  contextId?: string;
  /** Without a context of its own, create one for the dry run and delete it again. */
  temporaryContext?: boolean;
}

export type Rule =
  | 'no-iommu-group'
  | 'clearance'
  | 'owner'
  | 'kernel-driver'
  | 'group'
  | 'children-in-use'
  | 'parent'
  | 'parent-owned'
  | 'parent-driver'
  | 'server';

export interface Blocker {
  rule: Rule;
  /** What is in the way, as the server's blockers name it: a device or a group. */
  kind: string;
  id: string;
  /** The errno the server refuses with for this rule. */
  errno: string | null;
  text: string;
  fix: string;
}

export interface Explanation {
  deviceId: string;
  verdict: 'yes' | 'no' | 'yours' | 'unknown';
  summary: string;
  /** 'no': the first blocker's errno (the server's answer); 'unknown': why the device is not there. */
  errno: string | null;
  groupId: number | null;
  policy: string | null;
  principal: Principal | null;
  device: { id: string; kind: string; driver: string; label: string | null; description: string | null } | null;
  groupDevices: string[];
  contextId: string | null;
  temporaryContext: boolean;
  /** The context asked about holds the device's group already. */
  holdsGroup: boolean;
  /** 'yes': what to run to take it. */
  next: string[];
  blockers: Blocker[];
  warnings: { code: string; subject: string; detail: string; advice: string }[];
  notes: string[];
  dryRun: {
    request: string;
    contextId: string;
    status: number;
    ok: boolean;
    errno: string | null;
    detail: string | null;
    blockers: { kind: string; id: string; reason: string; owner?: string }[];
    effects: { kind: string; [k: string]: unknown }[];
  } | null;
}

export interface Commands {
  setDriver(id: string, driver: string): string;
  dryRunFirst: string;
  grant(principalId: string, clearances: string[]): string;
  endContext(id: string): string;
  askIn(deviceId: string, contextId: string): string | null;
  createContext: string;
  bind(deviceId: string, contextId: string): string;
  openGroup(groupId: number, contextId: string): string;
  setContainer(groupId: number): string;
  openDevice(groupId: number, deviceId: string): string;
}

export const USER_SAFE_DRIVERS: string[];
export const WARNING_ADVICE: Record<string, string>;
export const COMMANDS: { api: Commands; ioasctl: Commands };
export function isVirtual(device: { kind: string }): boolean;
export function isKernelDma(device: { kind: string; driver: string }): boolean;
export class WhyError extends Error {
  constructor(what: string, res: ApiAnswer);
  status: number;
  body: unknown;
}
export function gatherFacts(api: Api, deviceId: string, options?: GatherOptions): Promise<Facts>;
export function explain(facts: Facts, options?: { commands?: 'api' | 'ioasctl' }): Explanation;
export function fixFor(errno: string | null | undefined): string;
export function toText(explanation: Explanation): string;
