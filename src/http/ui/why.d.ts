// Types of why.js for TypeScript callers (tests, a CLI); the page loads why.js as is.

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

export interface Facts {
  deviceId: string;
  device: WhyDevice | null;
  problem?: unknown;
  me?: { id: string; role: string; clearances: string[] };
  policy?: 'device-first' | 'group-first';
  groups?: unknown[];
  devices?: WhyDevice[];
  contexts?: { id: string; principalId: string }[];
  context?: { id: string } | null;
  dryRun?: { method: string; path: string; contextId: string; status: number; body: unknown } | null;
}

export interface Blocker {
  rule: string;
  subject: string;
  text: string;
  fix: string;
}

export interface Explanation {
  deviceId: string;
  groupId?: number | null;
  policy?: string;
  verdict: 'yes' | 'no' | 'yours' | 'unknown';
  summary: string;
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
    effects: { kind: string; [k: string]: unknown }[];
  } | null;
}

export const USER_SAFE_DRIVERS: string[];
export const WARNING_ADVICE: Record<string, string>;
export function isVirtual(device: { kind: string }): boolean;
export function isKernelDma(device: { kind: string; driver: string }): boolean;
export class WhyError extends Error {
  status: number;
  body: unknown;
}
export function gatherFacts(api: Api, deviceId: string, options?: { contextId?: string }): Promise<Facts>;
export function explain(facts: Facts): Explanation;
export function fixFor(errno: string | null | undefined): string;
export function toText(explanation: Explanation): string;
