/**
 * "Why": can the caller take a device, and if not, every blocker and what would fix it. The one
 * place this reasoning lives: the topology page's why panel and `ioasctl why` both use it.
 *
 * Built only from what the API answers the caller: the device and group views (drivers, labels,
 * owner, blockers, isolation warnings), whoami's clearances, the caller's contexts, the host's
 * warnings, and a dry run of the first step of taking the device under the policy in force
 * (device-first: bind; group-first: open the group) in one of the caller's contexts. The server's
 * dry run stops at the first rule that refuses; the explanation lists every rule in the way, in the
 * order the server checks them (so the first blocker's errno is the one the server answers), and
 * adds whatever the server names that the views do not show.
 *
 * Plain JavaScript with no imports: the topology page loads it as is, and Node imports it (the CLI,
 * the tests; its types are in why.d.ts beside it). gatherFacts() does the requests through an
 * `api(method, path, body?) -> {status, body}` function; explain() is pure; toText() words an
 * explanation as lines for a terminal.
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

/**
 * How fixes and next steps name what to run: as API requests (the page, any HTTP client) or as
 * ioasctl command lines (a terminal). The rules and the sentences around them are the same.
 */
export const COMMANDS = {
  api: {
    setDriver: (id, driver) => `PUT /v1/devices/${pathId(id)}/driver ${JSON.stringify({ driver })}`,
    dryRunFirst: 'add ?dryRun=true first',
    grant: (principalId, clearances) => `PATCH /v1/principals/${principalId} ${JSON.stringify({ clearances })}`,
    endContext: (id) => `DELETE /v1/contexts/${id}`,
    askIn: () => null,
    createContext: 'POST /v1/contexts {}',
    bind: (id, ctx) => `POST /v1/devices/${pathId(id)}/bind ${JSON.stringify({ contextId: ctx })}`,
    openGroup: (g, ctx) => `POST /v1/groups/${g}/open ${JSON.stringify({ contextId: ctx })}`,
    setContainer: (g) => `PUT /v1/groups/${g}/container {"ioasId": <an ioas of that context>}`,
    openDevice: (g, id) => `POST /v1/groups/${g}/devices/${pathId(id)}/open`,
  },
  ioasctl: {
    setDriver: (id, driver) => `ioasctl devices set-driver ${id} ${driver}`,
    dryRunFirst: 'add --dry-run first',
    grant: (principalId, clearances) => `ioasctl principals update ${principalId} --clearances ${clearances.join(',')}`,
    endContext: (id) => `ioasctl contexts delete ${id}`,
    askIn: (id, ctx) => `ioasctl why ${id} --context ${ctx}`,
    createContext: 'ioasctl contexts create',
    bind: (id, ctx) => `ioasctl devices bind ${id} --context ${ctx}`,
    openGroup: (g, ctx) => `ioasctl groups open ${g} --context ${ctx}`,
    setContainer: (g) => `ioasctl groups set-container ${g} <ioas of that context>`,
    openDevice: (g, id) => `ioasctl groups open-device ${g} ${id}`,
  },
};

/** What the API answered that the explanation cannot do without. */
export class WhyError extends Error {
  constructor(what, res) {
    super(`${what} answered HTTP ${res.status}${res.body && res.body.detail ? `: ${res.body.detail}` : ''}`);
    this.status = res.status;
    this.body = res.body;
  }
}

/**
 * Asks the API everything the explanation needs, as the caller. The dry run runs in
 * `options.contextId` when given; otherwise in the caller's context already holding the device's
 * group, or its oldest context. A caller without any context gets none (the views still explain),
 * or with `options.temporaryContext` one created for the dry run and deleted again (two audit rows
 * and two events).
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
  let context =
    options.contextId !== undefined
      ? (mine.find((c) => c.id === options.contextId) ?? { id: options.contextId })
      : (mine.find((c) => group !== null && c.id === group.owner) ?? mine[0] ?? null);

  let dryRun = null;
  let temporaryContext = false;
  const policy = system.body.policy;
  // Group-first opens a group, so a device without one has nothing to try (the views explain it).
  if (group !== null || policy !== 'group-first') {
    if (context === null && options.temporaryContext) {
      const created = await api('POST', '/v1/contexts', { name: 'ioasctl-why' });
      if (created.status !== 201) throw new WhyError('POST /v1/contexts', created);
      context = created.body;
      temporaryContext = true;
    }
    if (context !== null) {
      const path =
        policy === 'group-first'
          ? `/v1/groups/${group.id}/open?dryRun=true`
          : `/v1/devices/${pathId(device.body.id)}/bind?dryRun=true`;
      let failure = null;
      try {
        const res = await api('POST', path, { contextId: context.id });
        dryRun = { method: 'POST', path, contextId: context.id, status: res.status, body: res.body };
      } catch (err) {
        failure = err;
      }
      // A temporary context goes again whatever the dry run did.
      if (temporaryContext) {
        const gone = await api('DELETE', `/v1/contexts/${context.id}`);
        if (failure === null && gone.status !== 204) failure = new WhyError(`DELETE /v1/contexts/${context.id}`, gone);
      }
      if (failure !== null) throw failure;
    }
  }
  const host = system.body.warnings && Array.isArray(system.body.warnings.host) ? system.body.warnings.host : [];
  return {
    deviceId,
    device: device.body,
    me,
    policy,
    groups: groups.body,
    devices: devices.body,
    contexts: mine,
    context,
    temporaryContext,
    hostWarnings: host,
    dryRun,
  };
}

const describe = (d) => (d.description ? `${d.id} (${d.description})` : d.id);
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * The explanation of gathered facts: `verdict` is 'yes' (the caller can take it: `next` says how),
 * 'yours' (the context asked about holds it already), 'no' (see `blockers`) or 'unknown' (no such
 * device). Each blocker has the `rule` in the way, what is in the way (`kind`, `id`), the `errno`
 * the server refuses with for it, a sentence `text` and a `fix`. `options.commands` ('api', the
 * default, or 'ioasctl') says how fixes and next steps name what to run.
 */
export function explain(facts, options = {}) {
  const say = COMMANDS[options.commands ?? 'api'];
  if (!facts.device) {
    const problem = facts.problem ?? {};
    return {
      deviceId: facts.deviceId,
      verdict: 'unknown',
      summary: `There is no device ${facts.deviceId} (${problem.detail ?? 'not found'}).`,
      errno: problem.errno ?? 'ENOENT',
      groupId: null,
      policy: facts.policy ?? null,
      principal: null,
      device: null,
      groupDevices: [],
      contextId: null,
      temporaryContext: false,
      holdsGroup: false,
      next: [],
      blockers: [],
      warnings: [],
      notes: [],
      dryRun: null,
    };
  }
  const { device, me, policy, dryRun } = facts;
  const groupFirst = policy === 'group-first';
  const byId = new Map(facts.devices.map((d) => [d.id, d]));
  const groupOf = (id) => (id === null || id === undefined ? null : (facts.groups.find((g) => g.id === id) ?? null));
  const myContextIds = new Set(facts.contexts.map((c) => c.id));
  const contextId = facts.context ? facts.context.id : null;
  const temporary = facts.temporaryContext === true;
  // A context named in a command: a temporary one is gone again by now.
  const ctxWord = contextId === null || temporary ? '<your context>' : contextId;
  const ownerWords = (owner) =>
    owner === 'other' ? "another principal's context" : myContextIds.has(owner) ? `your context ${owner}` : `context ${owner}`;
  const group = groupOf(device.groupId);
  const members = group ? facts.devices.filter((d) => d.groupId === group.id) : [device];
  const holdsGroup = group !== null && group.owner !== null && group.owner === contextId;
  // Refusals of "state in the way" differ by policy: bind says EPERM, group open EBUSY.
  const inTheWay = groupFirst ? 'EBUSY' : 'EPERM';

  // Each rule's blockers, assembled below in the order the server checks them.
  const noGroup = [];
  const clearance = [];
  const owner = [];
  const kernel = [];
  const parents = [];
  const parentDrivers = [];

  // No IOMMU group: nothing isolates the device's DMA, so nobody can be given it (isolation.ts assignableGroup).
  if (group === null) {
    noGroup.push({
      rule: 'no-iommu-group',
      kind: 'device',
      id: device.id,
      errno: 'ENODEV',
      text: `${describe(device)} is in no IOMMU group: nothing isolates its DMA, so it can never be handed to a user.`,
      fix: "none through ioasd: check that the IOMMU is on (intel_iommu=on or amd_iommu=on on the kernel command line) and that the firmware's DMAR/IVRS tables cover the device, or move the card to a slot the IOMMU isolates; then reload the inventory.",
    });
  }

  // Clearance for the label of every device in the group: each is reachable by peer-to-peer DMA.
  const missing = group ? members.filter((d) => d.label !== null && d.label !== undefined && !me.clearances.includes(d.label)) : [];
  const wanted = [...new Set([...me.clearances, ...missing.map((d) => d.label)])].sort();
  for (const d of missing) {
    clearance.push({
      rule: 'clearance',
      kind: 'device',
      id: d.id,
      errno: 'EACCES',
      text:
        `${describe(d)}${d.id === device.id ? '' : `, in the same group ${group.id},`} carries the label ${d.label}, and ${me.name} is not cleared for it ` +
        `(clearances: ${me.clearances.join(', ') || 'none'}); a device can reach every other in its group by peer-to-peer DMA.`,
      fix: `an admin grants the clearance: ${say.grant(me.id, wanted)}`,
    });
  }

  // One DMA owner per group.
  if (group !== null && group.owner !== null && !holdsGroup) {
    const held = group.owner;
    if (myContextIds.has(held)) {
      const ask = say.askIn(device.id, held);
      owner.push({
        rule: 'owner',
        kind: 'group',
        id: String(group.id),
        errno: inTheWay,
        text: `group ${group.id} is already held by your context ${held}: a group has one owner at a time.`,
        fix: `use that context${ask ? ` (${ask})` : ''}, or release the group there (${say.endContext(held)} releases everything it holds).`,
      });
    } else {
      owner.push({
        rule: 'owner',
        kind: 'group',
        id: String(group.id),
        errno: inTheWay,
        text: `group ${group.id} is owned by ${ownerWords(held)}: a group has one DMA owner at a time, and every device in it goes with it.`,
        fix:
          me.role === 'admin' && held !== 'other'
            ? `wait until it is released, or end it as admin: ${say.endContext(held)} (${say.dryRunFirst}: it lists what that context loses).`
            : 'wait until its owner releases it (unbind, group close, context delete, or its lease running out), or ask an admin to end that context.',
      });
    }
  }

  // No DMA-capable kernel driver beside a user owner: the group's own blockers, with the fix.
  for (const b of group ? group.blockers : []) {
    const d = byId.get(b.id);
    const named = /kernel driver (\S+)/.exec(b.reason ?? '');
    if (b.kind === 'device' && (named || (d && isKernelDma(d)))) {
      const driver = d ? d.driver : named[1];
      const when = groupFirst ? ' (checked when the group joins a container)' : '';
      kernel.push({
        rule: 'kernel-driver',
        kind: 'device',
        id: b.id,
        errno: 'EPERM',
        text:
          b.id === device.id
            ? `${describe(d ?? { id: b.id })} itself is bound to the kernel driver ${driver}: the host uses it and its DMA${when}.`
            : `${describe(d ?? { id: b.id })}, in the same group ${group.id}, is bound to the kernel driver ${driver}, which does DMA for the host: no user may own group ${group.id} beside it${when}.`,
        fix: `an admin moves it off the kernel driver: ${say.setDriver(b.id, 'vfio-pci')} (${say.dryRunFirst}: it says what the host loses; on a real host: driverctl set-override ${b.id} vfio-pci).`,
      });
    } else {
      kernel.push({ rule: 'group', kind: b.kind, id: b.id, errno: 'EPERM', text: `${b.id}: ${b.reason}.`, fix: `clear what group ${group.id} lists as blocking it.` });
    }
  }

  // The parent rule (a group is taken whole, so for every member): a device whose virtual devices
  // are in use cannot be taken; a virtual device's parent stays unowned, and on the kernel driver
  // providing it (device-first: checked for the device bound; group-first: for every member, when
  // the group joins a container).
  for (const d of members) {
    for (const c of facts.devices) {
      if (c.parentId !== d.id || !isVirtual(c)) continue;
      const cg = groupOf(c.groupId);
      if (cg && cg.owner !== null) {
        parents.push({
          rule: 'children-in-use',
          kind: 'device',
          id: c.id,
          errno: inTheWay,
          text: `${describe(d)} parents ${c.id}, which is held by ${ownerWords(cg.owner)}: a parent stays with its kernel driver while its virtual devices are in use.`,
          fix: `wait until ${c.id} is released.`,
        });
      }
    }
    if (!isVirtual(d) || !d.parentId) continue;
    const parent = byId.get(d.parentId);
    if (!parent) {
      parents.push({ rule: 'parent', kind: 'device', id: d.parentId, errno: 'ENODEV', text: `the parent ${d.parentId} of ${d.id} is gone.`, fix: 'an admin removes the virtual device or restores its parent.' });
      continue;
    }
    const parentGroup = groupOf(parent.groupId);
    if (parentGroup && parentGroup.owner !== null) {
      parents.push({
        rule: 'parent-owned',
        kind: 'device',
        id: parent.id,
        errno: inTheWay,
        text: `${describe(parent)}, the parent of ${d.id}, is held by ${ownerWords(parentGroup.owner)}: whoever owns a parent reaches every virtual device it carries.`,
        fix: `its owner releases group ${parentGroup.id}.`,
      });
    }
    if ((d.id === device.id || groupFirst) && !isKernelDma(parent)) {
      parentDrivers.push({
        rule: 'parent-driver',
        kind: 'device',
        id: parent.id,
        errno: 'EPERM',
        text: `${describe(parent)}, the parent of ${d.id}, is on ${parent.driver}, not the kernel driver that provides its virtual devices.`,
        fix: `an admin gives ${parent.id} back its kernel driver: ${say.setDriver(parent.id, '<its kernel driver>')}`,
      });
    }
  }

  // The server's order: bind checks clearance, the owner, drivers, then parents; group-first's open
  // checks the owner, clearance and parents, its container claim the drivers.
  const blockers = groupFirst
    ? [...noGroup, ...owner, ...clearance, ...parents, ...kernel, ...parentDrivers]
    : [...noGroup, ...clearance, ...owner, ...kernel, ...parents, ...parentDrivers];

  // What the server's dry run names beyond the above (it stops at the first rule in the way).
  let dry = null;
  let yours = false;
  if (dryRun) {
    const ok = dryRun.status >= 200 && dryRun.status < 300;
    const p = ok ? null : (dryRun.body ?? {});
    dry = {
      request: `${dryRun.method} ${dryRun.path}`,
      contextId: dryRun.contextId,
      status: dryRun.status,
      ok,
      errno: p ? (p.errno ?? null) : null,
      detail: p ? (p.detail ?? '') : null,
      blockers: p && Array.isArray(p.blockers) ? p.blockers : [],
      effects: ok && dryRun.body && Array.isArray(dryRun.body.effects) ? dryRun.body.effects : [],
    };
    // Already taken in this context: bound (device-first EINVAL) or open (group-first EBUSY).
    if (!ok && holdsGroup && p.errno === (groupFirst ? 'EBUSY' : 'EINVAL')) yours = true;
    else if (!ok) {
      const named = new Set(blockers.map((b) => b.id));
      for (const b of dry.blockers.filter((x) => !named.has(x.id))) {
        blockers.push({
          rule: 'server',
          kind: b.kind,
          id: b.id,
          errno: dry.errno,
          text: `${b.kind} ${b.id}: ${b.reason}${b.owner ? ` (${ownerWords(b.owner)})` : ''}.`,
          fix: fixFor(dry.errno),
        });
      }
      if (blockers.length === 0) {
        blockers.push({ rule: 'server', kind: 'device', id: device.id, errno: dry.errno, text: `the server refuses: ${p.detail ?? `HTTP ${dryRun.status}`}`, fix: fixFor(dry.errno) });
      }
    }
  }

  const notes = [];
  // Without a context there is nothing to dry-run in (group-first without a group has nothing to open).
  if (!dryRun && contextId === null && (group !== null || !groupFirst)) {
    notes.push(`You have no context, so the server was not asked: create one first (${say.createContext}).`);
  }

  // Isolation warnings of the group and its devices, each once, then the host's.
  const warnings = [];
  const seen = new Set();
  const found = [...(group && Array.isArray(group.warnings) ? group.warnings : []), ...members.flatMap((d) => (Array.isArray(d.warnings) ? d.warnings : []))];
  for (const w of found) {
    const key = `${w.code}|${w.deviceId ?? ''}|${w.detail ?? ''}`;
    if (seen.has(key)) continue;
    seen.add(key);
    warnings.push({ code: w.code, subject: w.deviceId ?? (group ? `group ${group.id}` : device.id), detail: w.detail ?? '', advice: WARNING_ADVICE[w.code] ?? '' });
  }
  for (const w of facts.hostWarnings ?? []) warnings.push({ code: w.code, subject: 'host', detail: w.detail ?? '', advice: WARNING_ADVICE[w.code] ?? '' });

  const n = blockers.length;
  let verdict;
  let summary;
  const next = [];
  if (n > 0) {
    verdict = 'no';
    summary = holdsGroup
      ? `Your context ${contextId} holds group ${group.id}, but you cannot take ${device.id} yet: ${plural(n, 'blocker')}.`
      : `You cannot take ${device.id}: ${plural(n, 'blocker')}.`;
  } else if (yours) {
    verdict = 'yours';
    summary = `${device.id} is already yours (context ${contextId}).`;
  } else {
    verdict = 'yes';
    const where = contextId === null ? 'a context' : temporary ? 'one of your contexts' : `context ${contextId}`;
    if (groupFirst) {
      summary = `You can take ${device.id}: open group ${group.id} in ${where}, put it in a container, then open the device.`;
      next.push(say.openGroup(group.id, ctxWord), say.setContainer(group.id), say.openDevice(group.id, device.id));
    } else {
      summary = `You can take ${device.id}: bind it to ${where}.`;
      next.push(say.bind(device.id, ctxWord));
    }
    if (holdsGroup) notes.push(`Your context ${contextId} already holds group ${group.id}.`);
    else if (members.length > 1) {
      notes.push(`Taking it claims all of group ${group.id} (${members.map((d) => d.id).join(', ')}): nobody else can use those while you hold it.`);
    }
  }
  return {
    deviceId: device.id,
    verdict,
    summary,
    errno: verdict === 'no' ? blockers[0].errno : null,
    groupId: group ? group.id : null,
    policy,
    principal: { id: me.id, name: me.name, role: me.role, clearances: me.clearances },
    device: { id: device.id, kind: device.kind, driver: device.driver, label: device.label ?? null, description: device.description ?? null },
    groupDevices: members.map((d) => d.id),
    contextId,
    temporaryContext: temporary,
    holdsGroup,
    next,
    blockers,
    warnings,
    notes,
    dryRun: dry,
  };
}

/** What to do about a refusal the views do not explain, by errno class. */
export function fixFor(errno) {
  switch (errno) {
    case 'EACCES':
      return 'an admin grants the clearance it names.';
    case 'EPERM':
    case 'EBUSY':
      return 'release or move what it names, then try again.';
    case 'ENOENT':
    case 'ENODEV':
      return 'check the ids: it is gone, or not yours.';
    case 'EOPNOTSUPP':
      return 'use the routes of the policy in force.';
    default:
      return "see the server's detail.";
  }
}

/** The explanation as plain lines, for a terminal or a log (`ioasctl why` prints this). */
export function toText(x) {
  if (x.verdict === 'unknown') return x.summary;
  const dev = x.device;
  const others = x.groupDevices.filter((id) => id !== dev.id);
  const where = x.groupId === null ? 'no IOMMU group' : `group ${x.groupId}${others.length ? ` (with ${others.join(', ')})` : ' (alone)'}`;
  const who = x.principal;
  const lines = [
    `${describe(dev)}: ${dev.kind} on ${dev.driver}, label ${dev.label ?? 'none'}, in ${where}; policy ${x.policy}; you are ${who.name} (clearances: ${who.clearances.join(', ') || 'none'}).`,
  ];
  if (x.verdict === 'yours') lines.push(`yes: you hold ${dev.id} already: its group is held by your context ${x.contextId}.`);
  else if (x.verdict === 'yes') {
    lines.push(`yes: ${who.name} can take ${dev.id} now:`);
    for (const step of x.next) lines.push(`  ${step}`);
    for (const e of x.dryRun ? x.dryRun.effects : []) {
      const { kind, ...rest } = e;
      lines.push(`  it would: ${String(kind)} ${Object.entries(rest).map(([k, v]) => `${k}=${Array.isArray(v) ? v.join(',') : String(v)}`).join(' ')}`);
    }
  } else {
    const held = x.holdsGroup ? ` Your context ${x.contextId} holds group ${x.groupId}, but cannot claim it yet.` : '';
    lines.push(`no: ${who.name} cannot take ${dev.id} now.${held} ${plural(x.blockers.length, 'blocker')}:`);
    x.blockers.forEach((b, i) => lines.push(`  ${i + 1}. ${b.text}`, `     fix: ${b.fix}`));
  }
  for (const w of x.warnings) {
    lines.push(`caution: ${w.code} (${w.subject}): ${w.detail}`);
    if (w.advice) lines.push(`  advice: ${w.advice}`);
  }
  for (const n of x.notes) lines.push(`note: ${n}`);
  const d = x.dryRun;
  if (d) {
    const outcome = d.ok ? `${d.status}: would succeed` : `${d.status} ${d.errno ?? ''}: ${d.detail ?? ''}`;
    lines.push(`checked: dry run of ${d.request} in ${x.temporaryContext ? 'a temporary context (deleted again)' : `context ${d.contextId}`}: ${outcome}`);
  }
  return lines.join('\n');
}
