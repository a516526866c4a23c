import { CliError } from './client.js';
import { EXIT, exitForProblem, type ExitCode } from './exit-codes.js';
import { pathSegment, type Context } from './context.js';
import { explain, whyText, type DeviceFacts, type DryRunFacts, type GroupFacts, type WhyFacts } from './why-explain.js';

interface Whoami {
  id: string;
  name: string;
  role: string;
  clearances: string[];
}

/**
 * `ioasctl why DEVICE [--context ID]`: gathers the facts (whoami, the policy, the device, its
 * group and the group's devices, a virtual device's parent, the caller's contexts), dry-runs the
 * claim the policy in force makes (device-first: bind; group-first: group open, the container
 * claim's driver rule read from the group), and explains. Without --context it tries the context
 * holding the group if it is the caller's, else the caller's first; a caller without any gets a
 * temporary context, deleted again before the answer. Exits 0 when the device can be taken, else
 * with the status of the refusal's errno.
 */
export async function whyCommand(ctx: Context, deviceId: string, options: { context?: string }): Promise<ExitCode> {
  const client = ctx.client();
  const get = async <T>(path: string, query?: Record<string, string>): Promise<T> => (await client.request('GET', path, query ? { query } : {})).body as T;

  const me = await get<Whoami>('/v1/whoami');
  const system = await get<{ policy: string; warnings?: unknown }>('/v1/system');
  // Host-level warnings: a list, or the summary's `host` list (servers reading a real host).
  const sw = system.warnings as { host?: unknown } | unknown[] | undefined;
  const systemWarnings = (Array.isArray(sw) ? sw : Array.isArray(sw?.host) ? sw.host : []) as NonNullable<WhyFacts['systemWarnings']>;
  const device = await get<DeviceFacts>(`/v1/devices/${pathSegment(deviceId)}`);
  const group = device.groupId === null ? null : await get<GroupFacts>(`/v1/groups/${device.groupId}`);
  const members = device.groupId === null ? [device] : await get<DeviceFacts[]>('/v1/devices', { group: String(device.groupId) });
  let parent: WhyFacts['parent'] = null;
  if (device.parentId !== null && (device.kind === 'mdev' || device.kind === 'vdpa')) {
    const p = await get<DeviceFacts>(`/v1/devices/${pathSegment(device.parentId)}`);
    if (p.groupId !== null) parent = { device: p, group: await get<GroupFacts>(`/v1/groups/${p.groupId}`) };
  }
  const contexts = await get<{ id: string; principalId: string }[]>('/v1/contexts');
  const myContexts = contexts.filter((c) => c.principalId === me.id).map((c) => c.id);

  let contextId = options.context;
  if (contextId === undefined) contextId = myContexts.find((c) => c === group?.owner) ?? myContexts[0];
  let temporary = false;
  if (contextId === undefined) {
    const created = await client.request('POST', '/v1/contexts', { body: { name: 'ioasctl-why' } });
    contextId = (created.body as { id: string }).id;
    temporary = true;
  }

  let dryRun: DryRunFacts;
  try {
    const [path, body] =
      system.policy === 'group-first' && device.groupId !== null
        ? [`/v1/groups/${device.groupId}/open`, { contextId }]
        : [`/v1/devices/${pathSegment(device.id)}/bind`, { contextId }];
    const request = `POST ${path}?dryRun=true`;
    try {
      const answer = await client.request('POST', path, { query: { dryRun: 'true' }, body });
      dryRun = { request, status: answer.status, effects: ((answer.body as { effects?: Record<string, unknown>[] }).effects ?? []) };
    } catch (err) {
      if (!(err instanceof CliError) || !err.problem) throw err;
      const p = err.problem;
      dryRun = { request, status: p.status, ...(p.errno ? { errno: p.errno } : {}), ...(p.detail ? { detail: p.detail } : {}), ...(p.blockers ? { blockers: p.blockers } : {}) };
    }
  } finally {
    if (temporary) await client.request('DELETE', `/v1/contexts/${pathSegment(contextId)}`);
  }

  const facts: WhyFacts = {
    policy: system.policy,
    principal: { id: me.id, name: me.name, role: me.role, clearances: me.clearances },
    device,
    group,
    members,
    parent,
    myContexts,
    contextId,
    temporaryContext: temporary,
    dryRun,
    systemWarnings,
  };
  const report = explain(facts);
  ctx.io.out(ctx.json ? JSON.stringify(report, null, 2) + '\n' : whyText(report, facts) + '\n');
  if (report.canTake) return EXIT.ok;
  // The status of the first blocker's class (the dry run stops at the first rule, which may be a
  // lesser one: a device bound by another is EINVAL before the group's owner is looked at).
  const first = report.blockers[0]?.code;
  if (first === 'label') return EXIT.access;
  if (first === 'no-iommu-group') return EXIT.notFound;
  if (first === 'refused' || first === undefined) return dryRun.status >= 400 ? exitForProblem(dryRun.status, dryRun.errno) : EXIT.conflict;
  return EXIT.conflict;
}
