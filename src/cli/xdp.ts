// strata xdp status|attach|detach --iface IF [--netns NS]
//
//   status  program id, mode, owner (pid, and whether it still runs: a dead
//           owner left the program attached), pinned maps, verdict
//           counters, steering and deny entries (--json for machines)
//   attach  loads the program and leaves it attached and pinned (for
//           benchmarks that drive an external AF_XDP program, which inserts
//           its socket into <pinDir>/xsks_map), with --steer/--deny rules
//           (--replace takes the interface from a live owner):
//             --steer ADDR[/udp|tcp[/PORT[-PORT]]]   (repeatable)
//             --deny PREFIX[:PORT] | [V6PREFIX]:PORT (repeatable)
//   detach  detaches the strata program and removes its pins
import { existsSync, readdirSync } from 'node:fs';
import { isIPv4 } from 'node:net';
import { probeTransports } from '../link/native.js';
import { InvalidArgumentError } from '../util/errors.js';
import { isRoot } from '../util/run.js';
import { pinDirFor, XdpProgram, type DenyRule, type SteerRule, type XdpMode } from '../xdp/program.js';
import { PROG_NAME } from '../xdp/shared.js';
import { parseArgs, UsageError } from './args.js';

const USAGE = 'usage: strata xdp status|attach|detach --iface IF [--netns NS] [--pin-dir DIR] [--json]\n'
  + '       strata xdp attach --iface IF [--netns NS] [--mode native|generic|auto] [--steer ADDR[/udp|tcp[/PORT[-PORT]]]]... [--deny PREFIX[:PORT]]... [--replace]';

export function parseSteer(s: string): SteerRule {
  const parts = s.split('/');
  const addr = parts[0]!;
  if (parts.length === 1) return { addr };
  const proto = parts[1];
  if (proto !== 'udp' && proto !== 'tcp') throw new InvalidArgumentError(`--steer ${s}: protocol must be udp or tcp`);
  if (parts.length === 2) return { addr, proto };
  const m = /^(\d+)(?:-(\d+))?$/.exec(parts[2] ?? '');
  if (!m || parts.length > 3) throw new InvalidArgumentError(`--steer ${s}: port must be PORT or PORT-PORT`);
  const lo = Number(m[1]), hi = m[2] !== undefined ? Number(m[2]) : lo;
  return { addr, proto, portLo: lo, portHi: hi };
}

export function parseDeny(s: string): DenyRule {
  const port = (p: string): number => {
    const n = Number(p);
    if (!/^\d+$/.test(p) || n > 65535) throw new InvalidArgumentError(`--deny ${s}: bad port '${p}'`);
    return n;
  };
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) throw new InvalidArgumentError(`--deny ${s}: missing ]`);
    const rest = s.slice(end + 1);
    return rest ? { prefix: s.slice(1, end), dstPort: port(rest.replace(/^:/, '')) } : { prefix: s.slice(1, end) };
  }
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const colon = s.indexOf(':', slash);
    return colon >= 0 ? { prefix: s.slice(0, colon), dstPort: port(s.slice(colon + 1)) } : { prefix: s };
  }
  const colon = s.lastIndexOf(':');
  if (colon > 0 && isIPv4(s.slice(0, colon))) return { prefix: s.slice(0, colon), dstPort: port(s.slice(colon + 1)) };
  return { prefix: s };
}

function fmtSteer(r: SteerRule): string {
  if (!r.proto) return `${r.addr} (all protocols)`;
  return `${r.addr} ${r.proto} ${r.portLo === r.portHi ? r.portLo : `${r.portLo}-${r.portHi}`}`;
}

export async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { booleans: ['json', 'help', 'replace'], strings: ['iface', 'netns', 'mode', 'pin-dir'], lists: ['steer', 'deny'] });
  const sub = a.positionals[0];
  if (a.flags.has('help')) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (sub !== 'status' && sub !== 'attach' && sub !== 'detach') throw new UsageError(USAGE);
  const iface = a.values.get('iface');
  if (!iface) throw new UsageError(`--iface is required\n${USAGE}`);
  const netns = a.values.get('netns');
  const pinDir = a.values.get('pin-dir') ?? pinDirFor(iface, netns);
  const json = a.flags.has('json');
  if (!isRoot()) {
    process.stderr.write('strata xdp: needs root (CAP_NET_ADMIN and CAP_BPF)\n');
    return 1;
  }
  const t = probeTransports().afxdp;
  if (!t.available) {
    process.stderr.write(`strata xdp: unavailable: ${t.reason}\n`);
    return 1;
  }

  if (sub === 'detach') {
    const did = XdpProgram.detachIface({ iface, netns, pinDir });
    process.stdout.write(json ? `${JSON.stringify({ iface, netns: netns ?? null, detached: did })}\n`
      : did ? `detached strata XDP from ${iface}${netns ? ` (netns ${netns})` : ''}, removed ${pinDir}\n` : `nothing to detach on ${iface}\n`);
    return 0;
  }

  if (sub === 'attach') {
    const mode = (a.values.get('mode') ?? 'auto') as XdpMode | 'auto';
    const steer = (a.listValues.get('steer') ?? []).map(parseSteer);
    const deny = (a.listValues.get('deny') ?? []).map(parseDeny);
    const p = XdpProgram.attach({ iface, netns, pinDir, mode, detachOnExit: false, replace: a.flags.has('replace') });
    try {
      for (const r of steer) p.steer(r);
      for (const r of deny) p.deny(r);
    } catch (e) {
      p.detach();
      throw e;
    }
    if (json) {
      process.stdout.write(`${JSON.stringify({ iface, netns: netns ?? null, id: p.id, mode: p.mode, fallbackReason: p.fallbackReason ?? null, pinDir, recovered: p.recovered, steering: p.steering(), deny: p.denials() })}\n`);
    } else {
      const lines = [`attached ${PROG_NAME} id ${p.id} to ${iface}${netns ? ` (netns ${netns})` : ''} in ${p.mode} mode; maps pinned in ${pinDir}`];
      if (p.fallbackReason) lines.push(`  native mode failed, fell back to generic: ${p.fallbackReason}`);
      if (p.recovered.staleProgramIds.length || p.recovered.stalePins) lines.push(`  replaced leftovers of an earlier run: programs [${p.recovered.staleProgramIds.join(', ')}], stale pins ${p.recovered.stalePins ? 'removed' : 'none'}`);
      for (const r of p.steering()) lines.push(`  steer ${fmtSteer(r)}`);
      for (const r of p.denials()) lines.push(`  deny  ${r.prefix}${r.dstPort !== undefined ? ` port ${r.dstPort}` : ''}`);
      process.stdout.write(`${lines.join('\n')}\n`);
    }
    return 0;
  }

  // status
  const q = XdpProgram.query({ iface, netns });
  const ours = q.programs.find((x) => x.name === PROG_NAME);
  const pins = existsSync(pinDir) ? readdirSync(pinDir).sort() : [];
  if (!ours || !pins.length) {
    if (json) process.stdout.write(`${JSON.stringify({ iface, netns: netns ?? null, attached: false, mode: q.mode, programs: q.programs, pinDir, pinned: pins })}\n`);
    else process.stdout.write(`no strata XDP program on ${iface}${netns ? ` (netns ${netns})` : ''}${q.programs.length ? `; attached: ${q.programs.map((x) => `${x.name}#${x.id}`).join(', ')}` : ''}${pins.length ? `; stale pins in ${pinDir}` : ''}\n`);
    return 1;
  }
  const p = XdpProgram.open({ iface, netns, pinDir });
  const counters = p.counters();
  const owner = p.ownerRecord();
  const steering = p.steering();
  const deny = p.denials();
  if (json) {
    process.stdout.write(`${JSON.stringify({ iface, netns: netns ?? null, attached: true, id: ours.id, owner: owner.pid, ownerStart: owner.start, ownerState: owner.state, mode: q.mode, legacy: q.legacy, programs: q.programs, pinDir, pinned: pins, counters, steering, deny })}\n`);
    return 0;
  }
  const lines = [
    `${iface}${netns ? ` (netns ${netns})` : ''}: ${PROG_NAME} id ${ours.id} tag ${ours.tag}, ${q.mode} mode${q.legacy ? '' : ' (libxdp dispatcher)'}`,
    `  owner: ${owner.pid === 0 ? 'none (detach with `strata xdp detach`)'
      : owner.state === 'alive' ? `pid ${owner.pid} (alive)`
        : `pid ${owner.pid} (dead: left attached; the next start replaces it, or \`strata xdp detach\`)`}`,
    `  pins ${pinDir}: ${pins.join(' ')}`,
    '  counters (packets / bytes):',
    ...Object.entries(counters).map(([k, v]) => `    ${k.padEnd(18)} ${String(v.packets).padStart(12)} ${String(v.bytes).padStart(14)}`),
    `  steering (${steering.length}):`,
    ...steering.map((r) => `    ${fmtSteer(r)}`),
    `  deny (${deny.length}):`,
    ...deny.map((r) => `    ${r.prefix}${r.dstPort !== undefined ? ` port ${r.dstPort}` : ''}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  return 0;
}
