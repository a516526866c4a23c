/**
 * `ioasctl why DEVICE`, the reasoning: from what the API shows (the device, its group, the group's
 * devices, the caller's clearances, the policy, and a dry run of the claim), every reason the caller
 * cannot take the device now, each in plain words with what would fix it. Pure: no I/O, so the same
 * explanation can be given anywhere the facts are at hand.
 */

export interface DeviceFacts {
  id: string;
  kind: string;
  groupId: number | null;
  parentId: string | null;
  driver: string;
  label: string | null;
  description: string | null;
}

export interface GroupFacts {
  id: number;
  devices: string[];
  viable: boolean;
  blockers: BlockerFacts[];
  owner: string | null;
  warnings?: { code: string; deviceId?: string | null; detail: string }[];
}

export interface BlockerFacts {
  kind: string;
  id: string;
  reason: string;
  owner?: string;
}

export interface DryRunFacts {
  /** What was tried, e.g. `POST /v1/devices/0000:01:00.0/bind?dryRun=true`. */
  request: string;
  status: number;
  errno?: string;
  detail?: string;
  blockers?: BlockerFacts[];
  effects?: Record<string, unknown>[];
}

export interface WhyFacts {
  policy: string;
  principal: { id: string; name: string; role: string; clearances: string[] };
  device: DeviceFacts;
  group: GroupFacts | null;
  /** Every device of the group, with its label and driver. */
  members: DeviceFacts[];
  /** A virtual device's parent and the parent's group. */
  parent: { device: DeviceFacts; group: GroupFacts } | null;
  /** The caller's own contexts. */
  myContexts: string[];
  contextId: string;
  temporaryContext: boolean;
  dryRun: DryRunFacts;
  systemWarnings?: { code: string; deviceId?: string | null; detail: string }[];
}

export type BlockerCode = 'no-iommu-group' | 'kernel-driver' | 'owned' | 'owned-by-you' | 'label' | 'parent' | 'refused';

export interface WhyBlocker {
  code: BlockerCode;
  /** What is in the way: a device, group or label. */
  kind: string;
  id: string;
  explanation: string;
  fix: string;
}

export interface WhyReport {
  device: string;
  groupId: number | null;
  policy: string;
  principal: WhyFacts['principal'];
  contextId: string;
  temporaryContext: boolean;
  canTake: boolean;
  /** The caller holds the group already (in this context). */
  alreadyYours: boolean;
  /** What to run to take it, when it can be taken. */
  next: string[];
  blockers: WhyBlocker[];
  warnings: string[];
  dryRun: DryRunFacts;
}

/** Drivers that do no DMA for the kernel (ownership.ts: everything else is kernel-DMA). */
const USER_SAFE_DRIVERS = new Set(['vfio-pci', 'pci-stub', 'pcieport', 'none']);

function name(d: DeviceFacts | undefined, id: string): string {
  return d?.description ? `${id} (${d.description})` : id;
}

export function explain(f: WhyFacts): WhyReport {
  const dev = f.device;
  const blockers: WhyBlocker[] = [];
  const add = (b: WhyBlocker) => {
    if (!blockers.some((x) => x.code === b.code && x.id === b.id)) blockers.push(b);
  };
  const member = (id: string) => f.members.find((m) => m.id === id) ?? (id === dev.id ? dev : undefined);
  const ctxFlag = f.temporaryContext ? '--context <your context>' : `--context ${f.contextId}`;
  const mine = (owner: string | null | undefined) => owner !== null && owner !== undefined && f.myContexts.includes(owner);
  let alreadyYours = false;

  if (f.group === null || dev.groupId === null) {
    add({
      code: 'no-iommu-group',
      kind: 'device',
      id: dev.id,
      explanation: `${name(dev, dev.id)} is in no IOMMU group: nothing isolates its DMA, so it can never be handed to a user.`,
      fix: 'none in ioasd: on the host, enable the IOMMU (intel_iommu=on or amd_iommu=on) or move the card to a slot the IOMMU isolates.',
    });
  }
  const g = f.group;
  if (g) {
    // One DMA owner per group.
    if (g.owner !== null) {
      if (g.owner === f.contextId) {
        alreadyYours = true;
      } else if (mine(g.owner)) {
        add({
          code: 'owned-by-you',
          kind: 'group',
          id: String(g.id),
          explanation: `group ${g.id} is already held by your context ${g.owner}: a group has one owner at a time.`,
          fix: `use that context (ioasctl why ${dev.id} --context ${g.owner}), or release the group there (ioasctl contexts delete ${g.owner} releases everything it holds).`,
        });
      } else {
        const who = g.owner === 'other' ? "another principal's context" : `context ${g.owner}`;
        add({
          code: 'owned',
          kind: 'group',
          id: String(g.id),
          explanation: `group ${g.id} is owned by ${who}: a group has one DMA owner at a time, and every device in it goes with it.`,
          fix:
            f.principal.role === 'admin' && g.owner !== 'other'
              ? `wait until it is released, or end it as admin: ioasctl contexts delete ${g.owner} (try --dry-run first: it lists what that context loses).`
              : 'wait until its owner releases it (unbind, group close, context delete, or its lease running out), or ask an admin to end that context.',
        });
      }
    }
    // No DMA-capable kernel driver beside a user owner.
    for (const b of g.blockers) {
      const m = /kernel driver (\S+)/.exec(b.reason);
      if (!m) continue;
      const d = member(b.id);
      const same = b.id === dev.id;
      add({
        code: 'kernel-driver',
        kind: 'device',
        id: b.id,
        explanation: same
          ? `${name(d, b.id)} itself is bound to the kernel driver ${m[1]}: the host uses it and its DMA.`
          : `${name(d, b.id)}, in the same group ${g.id}, is bound to the kernel driver ${m[1]}, which does DMA for the host: no user may own group ${g.id} beside it.`,
        fix: `an admin moves it off the kernel driver: ioasctl devices set-driver ${b.id} vfio-pci (add --dry-run first: it says what the host loses).`,
      });
    }
    // Clearance for the label of every device in the group.
    const missing = f.members.filter((m) => m.label !== null && !f.principal.clearances.includes(m.label));
    if (missing.length > 0) {
      const wanted = [...new Set([...f.principal.clearances, ...missing.map((m) => m.label!)])].sort();
      for (const m of missing) {
        add({
          code: 'label',
          kind: 'device',
          id: m.id,
          explanation: `${name(m, m.id)}${m.id === dev.id ? '' : `, in the same group ${g.id},`} carries the label ${m.label}, and ${f.principal.name} is not cleared for it (clearances: ${f.principal.clearances.join(', ') || 'none'}); a device can reach every other in its group by peer-to-peer DMA.`,
          fix: `an admin grants the clearance: ioasctl principals update ${f.principal.id} --clearances ${wanted.join(',')}`,
        });
      }
    }
  }
  // A virtual device rides on its parent: the parent stays on its kernel driver and unowned.
  if (f.parent) {
    const p = f.parent.device;
    if (f.parent.group.owner !== null) {
      add({
        code: 'parent',
        kind: 'device',
        id: p.id,
        explanation: `its parent ${name(p, p.id)} is owned by a user (${f.parent.group.owner}): whoever owns the parent could reach every virtual device on it.`,
        fix: `the parent's owner releases group ${f.parent.group.id}.`,
      });
    }
    if (USER_SAFE_DRIVERS.has(p.driver)) {
      add({
        code: 'parent',
        kind: 'driver',
        id: p.id,
        explanation: `its parent ${name(p, p.id)} is on ${p.driver}, not the kernel driver that provides its virtual devices.`,
        fix: `an admin puts ${p.id} back on its kernel driver: ioasctl devices set-driver ${p.id} <kernel driver>`,
      });
    }
  }
  // What the dry run said and nothing above explains.
  const refused = f.dryRun.status >= 400;
  if (refused) {
    const known = (b: BlockerFacts) =>
      blockers.some((x) => x.id === b.id || (b.kind === 'group' && x.kind === 'group')) ||
      (/kernel driver/.test(b.reason) && blockers.some((x) => x.code === 'kernel-driver' && x.id === b.id)) ||
      (/label/.test(b.reason) && blockers.some((x) => x.code === 'label' && x.id === b.id));
    const already = /already (bound|open in this context)/.test(f.dryRun.detail ?? '');
    if (already && (alreadyYours || g?.owner === f.contextId)) alreadyYours = true;
    else if (!alreadyYours) {
      const extra = (f.dryRun.blockers ?? []).filter((b) => !known(b));
      for (const b of extra) {
        add({ code: 'refused', kind: b.kind, id: b.id, explanation: `${b.kind} ${b.id}: ${b.reason}${b.owner ? ` (owner ${b.owner})` : ''}.`, fix: 'see the refusal below.' });
      }
      if (blockers.length === 0) {
        add({ code: 'refused', kind: 'device', id: dev.id, explanation: `the dry run was refused: ${f.dryRun.errno ?? f.dryRun.status}: ${f.dryRun.detail ?? ''}`, fix: 'see the refusal below.' });
      }
    }
  }

  const next: string[] = [];
  // Holding the group is not enough under group-first: the container claim checks the drivers again.
  const canTake = blockers.length === 0 && (alreadyYours || !refused);
  if (canTake && !alreadyYours && g) {
    if (f.policy === 'group-first') {
      next.push(`ioasctl groups open ${g.id} ${ctxFlag}`, `ioasctl groups set-container ${g.id} <ioas of that context>`, `ioasctl groups open-device ${g.id} ${dev.id}`);
    } else {
      next.push(`ioasctl devices bind ${dev.id} ${ctxFlag}`);
    }
  }
  const warnings = [...(g?.warnings ?? []), ...(f.systemWarnings ?? [])].map((w) => `${w.code}${w.deviceId ? ` (${w.deviceId})` : ''}: ${w.detail}`);
  return {
    device: dev.id,
    groupId: dev.groupId,
    policy: f.policy,
    principal: f.principal,
    contextId: f.contextId,
    temporaryContext: f.temporaryContext,
    canTake,
    alreadyYours,
    next,
    blockers,
    warnings,
    dryRun: f.dryRun,
  };
}

/** The report for people. */
export function whyText(r: WhyReport, f: WhyFacts): string {
  const dev = f.device;
  const others = (f.group?.devices ?? []).filter((d) => d !== dev.id);
  const where = f.group ? `group ${f.group.id}${others.length ? ` (with ${others.join(', ')})` : ' (alone)'}` : 'no IOMMU group';
  const lines = [
    `${name(dev, dev.id)}: ${dev.kind} on ${dev.driver}, label ${dev.label ?? 'none'}, in ${where}; policy ${r.policy}; you are ${r.principal.name} (clearances: ${r.principal.clearances.join(', ') || 'none'}).`,
  ];
  if (r.alreadyYours && r.canTake) lines.push(`yes: you hold ${dev.id} already: its group is held by your context ${r.contextId}.`);
  else if (r.canTake) {
    lines.push(`yes: ${r.principal.name} can take ${dev.id} now:`);
    for (const n of r.next) lines.push(`  ${n}`);
    for (const e of r.dryRun.effects ?? []) {
      const { kind, ...rest } = e;
      lines.push(`  it would: ${String(kind)} ${Object.entries(rest).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`).join(' ')}`);
    }
  } else {
    const held = r.alreadyYours ? ` Your context ${r.contextId} holds group ${String(r.groupId)}, but cannot claim it yet.` : '';
    lines.push(`no: ${r.principal.name} cannot take ${dev.id} now.${held} ${r.blockers.length} blocker${r.blockers.length === 1 ? '' : 's'}:`);
    r.blockers.forEach((b, i) => {
      lines.push(`  ${i + 1}. ${b.explanation}`);
      lines.push(`     fix: ${b.fix}`);
    });
  }
  for (const w of r.warnings) lines.push(`caution: ${w}`);
  const d = r.dryRun;
  const outcome = d.status >= 400 ? `${d.status} ${d.errno ?? ''}: ${d.detail ?? ''}` : `${d.status}: would succeed`;
  lines.push(`checked: dry run of ${d.request} in ${r.temporaryContext ? 'a temporary context (deleted again)' : `context ${r.contextId}`}: ${outcome}`);
  return lines.join('\n');
}
