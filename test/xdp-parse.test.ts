// The XDP program's parser and verdicts on exact frames, run in the kernel
// with BPF_PROG_TEST_RUN: 802.1Q and QinQ, IPv4 and IPv6, TCP and UDP,
// fragments, ARP, truncated headers, deny rules by prefix and by port.
// Each case checks the action and the reason counter that moved.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { probeTransports } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { XdpProgram, type XdpAction } from '../src/xdp/program.js';
import { parseAddr } from '../src/xdp/addr.js';
import type { ReasonName } from '../src/xdp/shared.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason!);

// --- frame builders ---------------------------------------------------------
const MAC_A = [0x02, 0, 0, 0, 0, 1], MAC_B = [0x02, 0, 0, 0, 0, 2];
/** Ethernet header; each VLAN tag is (TPID, VID), outermost first, then the ethertype. */
function eth(type: number, vlans: [number, number][] = []): number[] {
  const tags = vlans.flatMap(([tpid, vid]) => [tpid >> 8, tpid & 0xff, vid >> 8, vid & 0xff]);
  return [...MAC_B, ...MAC_A, ...tags, type >> 8, type & 0xff];
}
function ipv4(src: string, dst: string, proto: number, l4: number[], opts: { ihl?: number; fragOff?: number } = {}): number[] {
  const ihl = opts.ihl ?? 5;
  const h = [0x40 | ihl, 0, 0, 0, 0, 0, (opts.fragOff ?? 0) >> 8, (opts.fragOff ?? 0) & 0xff, 64, proto, 0, 0,
    ...parseAddr(src).bytes, ...parseAddr(dst).bytes];
  const total = Math.max(ihl, 5) * 4 + l4.length;
  h[2] = total >> 8; h[3] = total & 0xff;
  return [...h, ...new Array(Math.max(0, ihl - 5) * 4).fill(0), ...l4];
}
function ipv6(src: string, dst: string, next: number, l4: number[]): number[] {
  return [0x60, 0, 0, 0, l4.length >> 8, l4.length & 0xff, next, 64, ...parseAddr(src).bytes, ...parseAddr(dst).bytes, ...l4];
}
const udp = (sport: number, dport: number, payload = 8) => [sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, 0, 8 + payload, 0, 0, ...new Array(payload).fill(0x61)];
const tcp = (sport: number, dport: number) => [sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0];
function arp(op: number, spa: string, tpa: string): number[] {
  return [0, 1, 0x08, 0x00, 6, 4, 0, op, ...MAC_A, ...parseAddr(spa).bytes, 0, 0, 0, 0, 0, 0, ...parseAddr(tpa).bytes];
}
/** An IPv6 options-style extension header (hop-by-hop, routing, dest. options) of (units + 1) * 8 bytes. */
const ext = (next: number, units: number) => [next, units, ...new Array((units + 1) * 8 - 2).fill(0)];
/** An IPv6 fragment header; offset in 8-byte units, more-fragments flag set. */
const frag6 = (next: number, offset: number) => [next, 0, (offset << 3) >> 8, ((offset << 3) & 0xff) | 1, 0, 0, 0, 1];
const frame = (...parts: number[][]) => Uint8Array.from(parts.flat());
const Q = 0x8100, AD = 0x88a8;

describe.skipIf(skip !== null)(`XDP parser and verdicts${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let prog: XdpProgram;
  let link: AfXdpLink;

  beforeAll(() => {
    lab = privateLab('ps');
    lab.up();
    prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir });
    prog.steer({ addr: '10.200.0.3', proto: 'udp', portLo: 9000, portHi: 9009 });
    prog.steer({ addr: '10.200.0.3', proto: 'tcp', portLo: 80 });
    prog.steer({ addr: '10.200.0.4' });                       // every protocol
    prog.steer({ addr: 'fd00::3', proto: 'tcp', portLo: 443 });
    prog.deny({ prefix: '198.51.100.0/24' });
    prog.deny({ prefix: '203.0.113.7', dstPort: 9001 });
    prog.deny({ prefix: '2001:db8:bad::/48' });
    // A socket on queue 0, so steered frames get XDP_REDIRECT.
    link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, xdp: prog, frameCount: 128 });
  });

  afterAll(() => {
    link?.close();
    prog?.detach();
    lab?.down();
  });

  function verdict(f: Uint8Array): { action: XdpAction; reason: ReasonName } {
    const before = prog.counters();
    const action = prog.testRun(f);
    const after = prog.counters();
    const moved = (Object.keys(after) as ReasonName[]).filter((k) => after[k].packets !== before[k].packets);
    // Background frames (e.g. IPv6 router solicitations) could move another
    // counter; the test frame's reason is the one that moved by exactly one
    // and agrees with the action.
    const reason = moved.find((k) => after[k].packets - before[k].packets === 1 && after[k].bytes - before[k].bytes === f.length) ?? moved[0]!;
    return { action, reason };
  }

  const cases: [string, () => Uint8Array, XdpAction, ReasonName][] = [
    ['IPv4 UDP to a steered port', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 17, udp(5000, 9005))), 'redirect', 'redirected'],
    ['IPv4 UDP to an unsteered port', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 17, udp(5000, 9010))), 'pass', 'pass_not_steered'],
    ['IPv4 TCP to a steered port', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 6, tcp(5000, 80))), 'redirect', 'redirected'],
    ['IPv4 ICMP to a port-steered address', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 1, [8, 0, 0, 0, 0, 1, 0, 1])), 'pass', 'pass_not_steered'],
    ['IPv4 ICMP to an address steered for all protocols', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.4', 1, [8, 0, 0, 0, 0, 1, 0, 1])), 'redirect', 'redirected'],
    ['IPv4 to the kernel address', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.2', 6, tcp(5000, 22))), 'pass', 'pass_not_steered'],
    ['IPv4 with options (IHL 6) to a steered port', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 17, udp(1, 9000), { ihl: 6 })), 'redirect', 'redirected'],
    ['802.1Q-tagged IPv4 UDP', () => frame(eth(0x0800, [[Q, 100]]), ipv4('10.200.0.1', '10.200.0.3', 17, udp(5000, 9000))), 'redirect', 'redirected'],
    ['QinQ (802.1ad + 802.1Q) IPv4 UDP', () => frame(eth(0x0800, [[AD, 10], [Q, 100]]), ipv4('10.200.0.1', '10.200.0.3', 17, udp(5000, 9000))), 'redirect', 'redirected'],
    ['three VLAN tags: left to the kernel', () => frame(eth(0x0800, [[AD, 1], [Q, 2], [Q, 3]]), ipv4('10.200.0.1', '10.200.0.3', 17, udp(5000, 9000))), 'pass', 'pass_vlan_depth'],
    ['non-first IPv4 fragment to a port-steered address', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 17, udp(5000, 9000), { fragOff: 100 })), 'pass', 'pass_not_steered'],
    ['non-first IPv4 fragment to an address steered for all', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.4', 17, udp(5000, 9000), { fragOff: 100 })), 'redirect', 'redirected'],
    ['IPv6 TCP to a steered port', () => frame(eth(0x86dd), ipv6('fd00::1', 'fd00::3', 6, tcp(5000, 443))), 'redirect', 'redirected'],
    ['IPv6 TCP to another port', () => frame(eth(0x86dd), ipv6('fd00::1', 'fd00::3', 6, tcp(5000, 444))), 'pass', 'pass_not_steered'],
    ['IPv6 hop-by-hop, then TCP to a steered port', () => frame(eth(0x86dd), ipv6('fd00::1', 'fd00::3', 0, [...ext(6, 0), ...tcp(5000, 443)])), 'redirect', 'redirected'],
    ['IPv6 hop-by-hop + destination options (24 bytes), then TCP', () => frame(eth(0x86dd), ipv6('fd00::1', 'fd00::3', 0, [...ext(60, 0), ...ext(6, 2), ...tcp(5000, 443)])), 'redirect', 'redirected'],
    ['IPv6 first fragment of TCP to a steered port', () => frame(eth(0x86dd), ipv6('fd00::1', 'fd00::3', 44, [...frag6(6, 0), ...tcp(5000, 443)])), 'redirect', 'redirected'],
    ['IPv6 non-first fragment to a port-steered address', () => frame(eth(0x86dd), ipv6('fd00::1', 'fd00::3', 44, [...frag6(6, 10), ...tcp(5000, 443)])), 'pass', 'pass_not_steered'],
    ['IPv6 extension header longer than the frame', () => frame(eth(0x86dd), ipv6('fd00::1', 'fd00::3', 0, [...ext(6, 0)].map((x, i) => (i === 1 ? 200 : x)))), 'drop', 'malformed'],
    ['802.1Q-tagged IPv6 TCP', () => frame(eth(0x86dd, [[Q, 7]]), ipv6('fd00::1', 'fd00::3', 6, tcp(5000, 443))), 'redirect', 'redirected'],
    ['ARP request for a steered address', () => frame(eth(0x0806), arp(1, '10.200.0.1', '10.200.0.3')), 'redirect', 'arp_steered'],
    ['ARP request for the kernel address', () => frame(eth(0x0806), arp(1, '10.200.0.1', '10.200.0.2')), 'pass', 'pass_non_ip'],
    ['LLDP (another ethertype)', () => frame(eth(0x88cc), new Array(40).fill(0)), 'pass', 'pass_non_ip'],
    ['IPv4 header cut short', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 17, []).slice(0, 12)), 'drop', 'malformed'],
    ['IPv4 IHL below 5', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 17, udp(1, 9000), { ihl: 4 })), 'drop', 'malformed'],
    ['UDP header cut short', () => frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 17, udp(1, 9000, 0)).slice(0, 20 + 4)), 'drop', 'malformed'],
    ['IPv6 header cut short', () => frame(eth(0x86dd), ipv6('fd00::1', 'fd00::3', 6, []).slice(0, 30)), 'drop', 'malformed'],
    ['VLAN tag cut short', () => frame(eth(0x0800, [[Q, 1]])).slice(0, 15), 'drop', 'malformed'],
    ['source in a denied IPv4 prefix', () => frame(eth(0x0800), ipv4('198.51.100.99', '10.200.0.3', 17, udp(5000, 9000))), 'drop', 'deny_drop'],
    ['denied source, even to the kernel address', () => frame(eth(0x0800), ipv4('198.51.100.1', '10.200.0.2', 6, tcp(5000, 22))), 'drop', 'deny_drop'],
    ['source denied for its port', () => frame(eth(0x0800), ipv4('203.0.113.7', '10.200.0.3', 17, udp(5000, 9001))), 'drop', 'deny_drop'],
    ['same source, another port', () => frame(eth(0x0800), ipv4('203.0.113.7', '10.200.0.3', 17, udp(5000, 9002))), 'redirect', 'redirected'],
    ['source in a denied IPv6 prefix', () => frame(eth(0x86dd), ipv6('2001:db8:bad:1::5', 'fd00::3', 6, tcp(5000, 443))), 'drop', 'deny_drop'],
    ['IPv6 source next to the denied prefix', () => frame(eth(0x86dd), ipv6('2001:db8:bae::5', 'fd00::3', 6, tcp(5000, 443))), 'redirect', 'redirected'],
  ];

  for (const [name, build, action, reason] of cases) {
    it(`${name}: ${action} (${reason})`, () => {
      expect(verdict(build())).toEqual({ action, reason });
    });
  }

  it('passes steered frames when the queue has no socket (no_socket)', () => {
    prog.unbindXsk(0);
    try {
      expect(verdict(frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.3', 17, udp(5000, 9000))))).toEqual({ action: 'pass', reason: 'no_socket' });
    } finally {
      prog.bindXsk(0, link.fd);
    }
  });

  it('unsteer removes exactly one range and keeps the address while others use it', () => {
    prog.steer({ addr: '10.200.0.5', proto: 'udp', portLo: 1, portHi: 2 });
    prog.steer({ addr: '10.200.0.5', proto: 'udp', portLo: 5, portHi: 6 });
    expect(prog.unsteer({ addr: '10.200.0.5', proto: 'udp', portLo: 1, portHi: 2 })).toBe(true);
    expect(verdict(frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.5', 17, udp(1, 1)))).action).toBe('pass');
    expect(verdict(frame(eth(0x0800), ipv4('10.200.0.1', '10.200.0.5', 17, udp(1, 6)))).action).toBe('redirect');
    expect(verdict(frame(eth(0x0806), arp(1, '10.200.0.1', '10.200.0.5'))).reason).toBe('arp_steered');
    expect(prog.unsteer({ addr: '10.200.0.5', proto: 'udp', portLo: 5, portHi: 6 })).toBe(true);
    expect(verdict(frame(eth(0x0806), arp(1, '10.200.0.1', '10.200.0.5'))).reason).toBe('pass_non_ip');
    expect(prog.unsteer({ addr: '10.200.0.5', proto: 'udp', portLo: 5, portHi: 6 })).toBe(false);
  });
});
