/**
 * "Why": can the caller take a device, and if not, every blocker and what would fix it.
 *
 * Built only from what the API answers the caller: the device and group views (drivers, labels,
 * owner, blockers, isolation warnings), whoami's clearances, the caller's contexts, and a dry run
 * of the first step of taking the device under the policy in force (device-first: bind; group-first:
 * open the group) in one of the caller's contexts. The server's dry run stops at the first rule that
 * refuses; the explanation lists every rule in the way, and adds whatever the server names that the
 * views do not show.
 *
 * Plain JavaScript with no imports: the topology page loads it as is, and Node can import it.
 * gatherFacts() does the requests through an `api(method, path, body?) -> {status, body}` function;
 * explain() is pure; toText() words an explanation as lines.
 */

/** Drivers under which a PCI function does no DMA on the kernel's behalf (as the server's rule). */
export const USER_SAFE_DRIVERS = ['vfio-pci', 'pci-stub', 'pcieport', 'none'];

export function isVirtual(device) {
  return device.kind === 'mdev' || device.kind === 'vdpa';
}

/** A pci/vf function on a DMA-capable kernel driver; virtual devices never are. */
export function isKernelDma(device) {
  return !isVirtual(device) && !USER_SAFE_DRIVERS.includes(device.driver);
}

/** What to do about each isolation warning (they warn; only no-iommu also refuses). */
export const WARNING_ADVICE = {
  'no-acs': 'Hand the whole group, and everything else below that port, to one tenant only; keep host devices out from under it.',
  'multifunction-no-acs': 'Assign these functions together, to one tenant; never split them between tenants or with the host.',
  'acs-override': 'On a host shared by tenants boot without pcie_acs_override; otherwise treat every group below that port as one.',
  'identity-domain': "Boot without iommu=pt, or write DMA to the group's type, before giving its devices to anyone untrusted.",
  'no-iommu': "It can never be assigned: check the kernel log and the firmware's DMAR/IVRS tables, or move the card.",
};

/** A device id in a path: PCI addresses keep their colons, anything else is escaped. */
const pathId = (id) => encodeURIComponent(id).replace(/%3A/gi, ':');

/** What the API answered that the explanation cannot do without. */
export class WhyError extends Error {
  constructor(what, res) {
    super(`${what} answered HTTP ${res.status}${res.body && res.body.detail ? `: ${res.body.detail}` : ''}`);
    this.status = res.status;
    this.body = res.body;
  }
}

/**
 * Asks the API everything the explanation needs, as the caller. `options.contextId` picks the
 * context for the dry run; otherwise the caller's context already holding the device's group, or
 * its oldest context.
 */
export async function gatherFacts(api, deviceId, options = {}) {
  const [device, whoami, system, groups, devices, contexts] = await Promise.all([
    api('GET', `/v1/devices/${pathId(deviceId)}`),
    api('GET', '/v1/whoami'),
    api('GET', '/v1/system'),
    api('GET', '/v1/groups'),
    api('GET', '/v1/devices'),
    api('GET', '/v1/contexts'),
  ]);
  const need = { 'GET /v1/whoami': whoami, 'GET /v1/system': system, 'GET /v1/groups': groups, 'GET /v1/devices': devices, 'GET /v1/contexts': contexts };
  for (const [what, res] of Object.entries(need)) if (res.status !== 200) throw new WhyError(what, res);
  if (device.status === 404) return { deviceId, device: null, problem: device.body };
  if (device.status !== 200) throw new WhyError(`GET /v1/devices/${deviceId}`, device);

  const me = whoami.body;
  const mine = contexts.body.filter((c) => c.principalId === me.id);
  const groupId = device.body.groupId ?? null;
  const group = groups.body.find((g) => g.id === groupId) ?? null;
  const context =
    mine.find((c) => c.id === options.contextId) ?? mine.find((c) => group !== null && c.id === group.owner) ?? mine[0] ?? null;

  let dryRun = null;
  const policy = system.body.policy;
  // Group-first opens a group, so a device without one has nothing to try (the views explain it).
  if (context !== null && (group !== null || policy !== 'group-first')) {
    const path =
      policy === 'group-first'
        ? `/v1/groups/${group.id}/open?dryRun=true`
        : `/v1/devices/${pathId(device.body.id)}/bind?dryRun=true`;
    const res = await api('POST', path, { contextId: context.id });
    dryRun = { method: 'POST', path, contextId: context.id, status: res.status, body: res.body };
  }
  return {
    deviceId,
    device: device.body,
    me,
    policy,
    groups: groups.body,
    devices: devices.body,
    contexts: mine,
    context,
    dryRun,
  };
}

const describe = (d) => (d.description ? `${d.id} (${d.description})` : d.id);

/**
 * The explanation of gathered facts: `verdict` is 'yes' (the caller can take it), 'yours' (it
 * already holds it), 'no' (see `blockers`) or 'unknown' (no such device). Each blocker has the
 * `rule` in the way, its `subject`, a sentence `text` and a `fix`.
 */
export function explain(facts) {
  if (!facts.device) {
    const detail = facts.problem && facts.problem.detail ? facts.problem.detail : 'not found';
    return {
      deviceId: facts.deviceId,
      verdict: 'unknown',
      summary: `There is no device ${facts.deviceId} (${detail}).`,
      blockers: [],
      warnings: [],
      notes: [],
      dryRun: null,
    };
  }
  const { device, me, policy, context, dryRun } = facts;
  const byId = new Map(facts.devices.map((d) => [d.id, d]));
  const groupOf = (id) => facts.groups.find((g) => g.id === id) ?? null;
  const myContextIds = new Set(facts.contexts.map((c) => c.id));
  const ownerWords = (owner) =>
    myContextIds.has(owner) ? `your context ${owner}` : owner === 'other' ? "another principal's context" : `context ${owner}`;
  const group = device.groupId === null || device.groupId === undefined ? null : groupOf(device.groupId);
  const members = group ? facts.devices.filter((d) => d.groupId === group.id) : [device];
  const groupFirst = policy === 'group-first';
  const blockers = [];
  const notes = [];
  const add = (b) => blockers.push(b);

  // No IOMMU group: nothing isolates the device's DMA, so nobody can be given it.
  if (group === null) {
    add({
      rule: 'no-iommu-group',
      subject: device.id,
      text: `${describe(device)} is in no IOMMU group: nothing would confine its DMA.`,
      fix: "None through ioasd: check that the IOMMU is on (intel_iommu=on or amd_iommu=on on the kernel command line) and that the firmware's DMAR/IVRS tables cover the device (or move the card), then reload the inventory.",
    });
  }

  // Clearance for the label of every device in the group: each is reachable by peer-to-peer DMA.
  for (const d of members) {
    if (d.label === null || d.label === undefined || me.clearances.includes(d.label)) continue;
    add({
      rule: 'clearance',
      subject: d.id,
      text:
        `${describe(d)} carries label "${d.label}", which you are not cleared for` +
        (d.id === device.id ? '.' : `; it shares group ${group.id}, so the device you take could reach it by DMA.`),
      fix: `An admin adds "${d.label}" to your clearances (PATCH /v1/principals/${me.id} with the new clearances list), or moves the device to another label.`,
    });
  }

  // One DMA owner per group.
  const ownedByMe = group !== null && group.owner !== null && myContextIds.has(group.owner);
  if (group !== null && group.owner !== null && !ownedByMe) {
    add({
      rule: 'owner',
      subject: `group ${group.id}`,
      text: `Group ${group.id} is held by ${ownerWords(group.owner)}: a group has one DMA owner at a time.`,
      fix: 'Wait until its owner releases it (unbind or close, deleting its context, or its lease running out); an admin can delete the holding context.',
    });
  }

  // No DMA-capable kernel driver beside a user owner: the group's own blockers, with the fix.
  for (const b of group ? group.blockers : []) {
    const d = byId.get(b.id);
    if (b.kind === 'device' && d && isKernelDma(d)) {
      add({
        rule: 'kernel-driver',
        subject: d.id,
        text:
          `${describe(d)} is on ${d.driver}, a kernel driver that does DMA for the host: no user may own group ${group.id} beside it` +
          (groupFirst ? ' (checked when the group joins a container).' : '.'),
        fix: `An admin moves it to vfio-pci: PUT /v1/devices/${d.id}/driver {"driver":"vfio-pci"} (on a real host: driverctl set-override ${d.id} vfio-pci).`,
      });
    } else {
      add({ rule: 'group', subject: b.id, text: `${b.id}: ${b.reason}.`, fix: 'Clear what group ' + group.id + ' lists as blocking it.' });
    }
  }

  // The parent rule: a virtual device's parent stays unowned and on the kernel driver providing it;
  // a device whose virtual devices are in use cannot be taken.
  for (const d of members) {
    if (isVirtual(d) && d.parentId) {
      const parent = byId.get(d.parentId);
      const parentGroup = parent ? groupOf(parent.groupId) : null;
      if (!parent) {
        add({ rule: 'parent', subject: d.id, text: `The parent ${d.parentId} of ${d.id} is gone.`, fix: 'An admin removes the virtual device or restores its parent.' });
        continue;
      }
      if (parentGroup && parentGroup.owner !== null) {
        add({
          rule: 'parent-owned',
          subject: parent.id,
          text: `${describe(parent)}, the parent of ${d.id}, is held by ${ownerWords(parentGroup.owner)}: whoever owns a parent reaches every virtual device it carries.`,
          fix: `Its owner releases group ${parentGroup.id}.`,
        });
      }
      if ((d.id === device.id || groupFirst) && !isKernelDma(parent)) {
        add({
          rule: 'parent-driver',
          subject: parent.id,
          text: `${describe(parent)}, the parent of ${d.id}, is on ${parent.driver}, not the kernel driver that provides its virtual devices.`,
          fix: `An admin gives ${parent.id} back its kernel driver: PUT /v1/devices/${parent.id}/driver.`,
        });
      }
    }
    for (const c of facts.devices) {
      if (c.parentId !== d.id || !isVirtual(c)) continue;
      const cg = groupOf(c.groupId);
      if (cg && cg.owner !== null) {
        add({
          rule: 'children-in-use',
          subject: c.id,
          text: `${describe(d)} parents ${c.id}, which is held by ${ownerWords(cg.owner)}: a parent stays with its kernel driver while its virtual devices are in use.`,
          fix: `Wait until ${c.id} is released.`,
        });
      }
    }
  }

  // What the server's dry run names beyond the above (it stops at the first rule in the way).
  let dry = null;
  let yours = false;
  if (dryRun) {
    const ok = dryRun.status >= 200 && dryRun.status < 300;
    const p = ok ? null : dryRun.body ?? {};
    dry = {
      request: `${dryRun.method} ${dryRun.path}`,
      contextId: dryRun.contextId,
      status: dryRun.status,
      ok,
      errno: p ? p.errno ?? null : null,
      detail: p ? p.detail ?? '' : null,
      effects: ok && dryRun.body && Array.isArray(dryRun.body.effects) ? dryRun.body.effects : [],
    };
    // Already taken by the caller: bound (device-first EINVAL) or open (group-first EBUSY) in its context.
    if (!ok && ownedByMe && ((!groupFirst && p.errno === 'EINVAL') || (groupFirst && p.errno === 'EBUSY'))) yours = true;
    else if (!ok) {
      const named = new Set(blockers.map((b) => b.subject));
      const extra = (p.blockers ?? []).filter((b) => !named.has(b.id) && !named.has(`${b.kind} ${b.id}`));
      for (const b of extra) {
        add({ rule: 'server', subject: b.id, text: `${b.kind} ${b.id}: ${b.reason}${b.owner ? ` (${ownerWords(b.owner)})` : ''}.`, fix: fixFor(p.errno) });
      }
      if (blockers.length === 0) add({ rule: 'server', subject: device.id, text: `The server refuses: ${p.detail ?? `HTTP ${dryRun.status}`}`, fix: fixFor(p.errno) });
    }
  } else if (group !== null || !groupFirst) {
    notes.push(
      context === null
        ? 'You have no context, so the server was not asked: create one first (POST /v1/contexts {}).'
        : 'The server was not asked.',
    );
  }

  const warnings = [];
  const seen = new Set();
  for (const w of [...(group && Array.isArray(group.warnings) ? group.warnings : []), ...members.flatMap((d) => (Array.isArray(d.warnings) ? d.warnings : []))]) {
    const key = `${w.code}|${w.deviceId ?? ''}|${w.detail ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    warnings.push({ code: w.code, subject: w.deviceId ?? (group ? `group ${group.id}` : device.id), detail: w.detail ?? '', advice: WARNING_ADVICE[w.code] ?? '' });
  }

  const n = blockers.length;
  let verdict;
  let summary;
  if (n > 0) {
    verdict = 'no';
    summary = `You cannot take ${device.id}: ${n} blocker${n > 1 ? 's' : ''}.`;
  } else if (yours) {
    verdict = 'yours';
    summary = `${device.id} is already yours (context ${group.owner}).`;
  } else {
    verdict = 'yes';
    const how = groupFirst
      ? `open group ${group.id} in ${context ? `context ${context.id}` : 'a context'}, put it in a container, then open the device`
      : `bind it to ${context ? `context ${context.id}` : 'a context'}`;
    summary = `You can take ${device.id}: ${how}.`;
    if (members.length > 1 && !ownedByMe) {
      notes.push(`Taking it claims all of group ${group.id} (${members.map((d) => d.id).join(', ')}): nobody else can use those while you hold it.`);
    }
  }
  if (ownedByMe && verdict !== 'yours') notes.push(`Your context ${group.owner} already holds group ${group.id}.`);
  return { deviceId: device.id, groupId: group ? group.id : null, policy, verdict, summary, blockers, warnings, notes, dryRun: dry };
}

/** What to do about a refusal the views do not explain, by errno class. */
export function fixFor(errno) {
  switch (errno) {
    case 'EACCES':
      return 'An admin grants the clearance it names.';
    case 'EPERM':
    case 'EBUSY':
      return 'Release or move what it names, then try again.';
    case 'ENOENT':
    case 'ENODEV':
      return 'Check the ids: it is gone, or not yours.';
    case 'EOPNOTSUPP':
      return 'Use the routes of the policy in force.';
    default:
      return 'See the server\'s detail.';
  }
}

/** The explanation as plain lines, for a terminal or a log. */
export function toText(x) {
  const lines = [x.summary];
  for (const b of x.blockers) lines.push(`  blocker (${b.rule}): ${b.text}`, `    fix: ${b.fix}`);
  for (const w of x.warnings) {
    lines.push(`  warning (${w.code}) ${w.subject}: ${w.detail}`);
    if (w.advice) lines.push(`    advice: ${w.advice}`);
  }
  for (const n of x.notes) lines.push(`  note: ${n}`);
  if (x.dryRun) {
    lines.push(
      `  dry run: ${x.dryRun.request} in context ${x.dryRun.contextId} -> ${x.dryRun.status}` +
        (x.dryRun.ok ? ` (would go through${x.dryRun.effects.length ? `: ${x.dryRun.effects.map((e) => e.kind).join(', ')}` : ''})` : ` ${x.dryRun.errno ?? ''}: ${x.dryRun.detail}`),
    );
  }
  return lines.join('\n');
}
