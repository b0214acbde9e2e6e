// The conntrack table: timeouts on a virtual clock, the size bound and
// eviction, policy, the snapshot API, ICMP, metrics, a churn leak check and
// a seeded randomized comparison against a Map-based reference model.
import { describe, it, expect } from 'vitest';
// @ts-expect-error the package ships no type declarations
import parsePrometheusTextFormat from 'parse-prometheus-text-format';
import { CT_RESULT, IPPROTO } from '../src/stack/registration.js';
import {
  Conntrack, CT_END, CT_HOOK, CT_UNTRACKED, TCPF, registerConntrackMetrics, conntrackNewEvents, conntrackEndEvents, ctDenyPolicy,
  type ConntrackOptions, type CtEntryInfo, type CtTimeouts,
} from '../src/stack/conntrack/index.js';
import { InvalidArgumentError } from '../src/util/errors.js';
import { Registry } from '../src/obs/metrics.js';
import { Prng } from '../src/util/prng.js';
import { VirtualClock } from '../src/util/clock.js';

const C = 0x0ac80001;
const S = 0x0ac80003;
const { SYN, ACK, FIN } = TCPF;

/** Fills ct.pkt for a TCP segment and tracks it (the IPv4 layer's fast path). */
function tcp(ct: Conntrack, src: number, dst: number, sp: number, dp: number, flags: number, seq: number, ack: number, now: number, len = 0): number {
  const p = ct.pkt;
  p.proto = IPPROTO.TCP; p.src = src; p.dst = dst; p.sport = sp; p.dport = dp;
  p.flags = flags; p.seq = seq >>> 0; p.ack = ack >>> 0; p.win = 65535; p.wscale = -1; p.payloadLen = len; p.ipLen = 40 + len;
  p.related = false; p.icmpType = -1;
  return ct.trackPacket(p, CT_HOOK.IN, now);
}

function udp(ct: Conntrack, src: number, dst: number, sp: number, dp: number, now: number, len = 100, hook: number = CT_HOOK.IN): number {
  const p = ct.pkt;
  p.proto = IPPROTO.UDP; p.src = src; p.dst = dst; p.sport = sp; p.dport = dp; p.flags = 0; p.ipLen = 28 + len;
  p.related = false; p.icmpType = -1;
  return ct.trackPacket(p, hook, now);
}

/** A full handshake on port sp at time now; the client's next seq is 101, the server's 501. */
function open(ct: Conntrack, sp: number, now: number): void {
  tcp(ct, C, S, sp, 80, SYN, 100, 0, now);
  tcp(ct, S, C, 80, sp, SYN | ACK, 500, 101, now);
  tcp(ct, C, S, sp, 80, ACK, 101, 501, now);
}

/** Both FINs exchanged and acknowledged: TIME_WAIT. */
function close(ct: Conntrack, sp: number, now: number): void {
  tcp(ct, C, S, sp, 80, FIN | ACK, 101, 501, now);
  tcp(ct, S, C, 80, sp, FIN | ACK, 501, 102, now);
  tcp(ct, C, S, sp, 80, ACK, 102, 502, now);
}

function mk(opts: ConntrackOptions = {}): Conntrack { return new Conntrack({ seed: 1, ...opts }); }

describe('timeouts on a virtual clock', () => {
  it('SYN entries live 60 s of idle time', () => {
    const ct = mk();
    const clock = new VirtualClock(0);
    tcp(ct, C, S, 1000, 80, SYN, 1, 0, clock.now());
    expect(ct.nextExpiry()).toBe(60_000);
    clock.set(59_999);
    expect(ct.expire(clock.now())).toBe(0);
    expect(ct.size).toBe(1);
    clock.set(60_000);
    expect(ct.expire(clock.now())).toBe(1);
    expect([ct.size, ct.stats.expirations, ct.nextExpiry()]).toEqual([0, 1, undefined]);
  });

  it('ESTABLISHED lives 6 h, refreshed by every accepted packet', () => {
    const ct = mk();
    open(ct, 1000, 0);
    const id = ct.lastId;
    expect(ct.get(id)!.expiresAt).toBe(21_600_000);
    ct.expire(21_599_999);
    expect(ct.size).toBe(1);
    tcp(ct, C, S, 1000, 80, ACK, 101, 501, 21_599_999);
    expect(ct.get(id)!.expiresAt).toBe(21_599_999 + 21_600_000);
    ct.expire(21_600_000 + 21_599_998);
    expect(ct.size).toBe(1);
    ct.expire(21_599_999 + 21_600_000);
    expect(ct.size).toBe(0);
  });

  it('closing states live 10 s', () => {
    const ct = mk();
    open(ct, 1000, 0);
    tcp(ct, C, S, 1000, 80, FIN | ACK, 101, 501, 5000);
    expect(ct.get(ct.lastId)!.state).toBe('FIN_WAIT');
    expect(ct.nextExpiry()).toBe(15_000);
    ct.expire(14_999);
    expect(ct.size).toBe(1);
    ct.expire(15_000);
    expect(ct.size).toBe(0);
  });

  it('UDP lives 60 s; timeouts are configurable', () => {
    const ct = mk();
    udp(ct, C, S, 5000, 53, 0);
    udp(ct, S, C, 53, 5000, 30_000);
    ct.expire(89_999);
    expect(ct.size).toBe(1);
    ct.expire(90_000);
    expect(ct.size).toBe(0);
    const short = mk({ timeouts: { other: 1000, tcpSyn: 2000 } });
    udp(short, C, S, 5000, 53, 0);
    tcp(short, C, S, 1000, 80, SYN, 1, 0, 0);
    expect(short.timeouts).toEqual({ tcpSyn: 2000, tcpEstablished: 21_600_000, tcpClosing: 10_000, other: 1000, tcpUnreplied: 60_000 });
    short.expire(1000);
    expect(short.size).toBe(1);
    short.expire(2000);
    expect(short.size).toBe(0);
  });

  it('expire() honours its budget; lookup() treats an entry past its timeout as absent', () => {
    const ct = mk();
    for (let i = 0; i < 10; i++) udp(ct, C, S, 5000 + i, 53, i);
    expect(ct.lookup(IPPROTO.UDP, C, S, 5000, 53)).not.toBe(0);
    expect(ct.expire(60_005, 3)).toBe(3);
    expect(ct.size).toBe(7);
    expect(ct.lookup(IPPROTO.UDP, C, S, 5005, 53)).toBe(0); // expired at 60 005, not yet swept
    expect(ct.lookup(IPPROTO.UDP, C, S, 5006, 53)).not.toBe(0);
    expect(ct.expire(60_005)).toBe(3);
    expect(ct.nextExpiry()).toBe(60_006);
  });

  it('an onRemove callback that throws does not corrupt the table', () => {
    const ct = mk({ onRemove: () => { throw new Error('observer bug'); } });
    udp(ct, C, S, 5000, 53, 0);
    expect(() => ct.expire(60_000)).toThrow('observer bug');
    expect(ct.size).toBe(0);
    expect(udp(ct, C, S, 5000, 53, 60_001)).toBe(CT_RESULT.CONNECTING);
    expect(ct.size).toBe(1);
  });

  it('an expired entry found by a lookup is removed and the packet starts a new flow', () => {
    const ct = mk();
    udp(ct, C, S, 5000, 53, 0);
    const old = ct.lastId;
    expect(udp(ct, S, C, 53, 5000, 60_000)).toBe(CT_RESULT.CONNECTING); // the reply arrives too late
    expect(ct.lastId).not.toBe(old);
    expect(ct.lastDir).toBe(0);
    expect(ct.get(ct.lastId)!.src).toBe(S);
    expect([ct.size, ct.stats.expirations]).toEqual([1, 1]);
  });

  it('invalid packets do not refresh the timeout', () => {
    const ct = mk();
    open(ct, 1000, 0);
    tcp(ct, C, S, 1000, 80, ACK, 101 + 50_000_000, 501, 1000); // out of window
    expect(ct.invalid.get('out_of_window')).toBe(1);
    expect(ct.get(ct.lastId)!.lastSeen).toBe(0);
  });
});

describe('unreplied TCP entries (tcpUnreplied)', () => {
  // A bare ACK picks up an ESTABLISHED entry (loose). Until the other side
  // answers, it lives min(tcpEstablished, tcpUnreplied) = 60 s, not 6 h.
  it('a picked-up entry that never sees a reply expires after 60 s, and is counted', () => {
    const ct = mk();
    expect(tcp(ct, C, S, 1000, 80, ACK, 101, 501, 0)).toBe(CT_RESULT.ALIVE);
    const id = ct.lastId;
    let e = ct.get(id)!;
    expect([e.state, e.pickedUp, e.replied, e.timeoutClass, e.expiresAt]).toEqual(['ESTABLISHED', true, false, 'unreplied', 60_000]);
    // More packets from the same side refresh it, still on the short timeout.
    tcp(ct, C, S, 1000, 80, ACK, 101, 501, 30_000);
    e = ct.get(id)!;
    expect([e.timeoutClass, e.expiresAt, e.packets]).toEqual(['unreplied', 90_000, [2, 0]]);
    expect(ct.nextExpiry()).toBe(90_000);
    expect(ct.expire(89_999)).toBe(0);
    expect(ct.expire(90_000)).toBe(1);
    expect([ct.size, ct.stats.expirations, ct.stats.unrepliedExpirations]).toEqual([0, 1, 1]);
  });

  it('a late duplicate of a closed connection\'s last ACK no longer holds an entry for 6 h', () => {
    const ct = mk();
    open(ct, 1000, 0);
    close(ct, 1000, 1000);
    ct.expire(11_000); // TIME_WAIT (10 s) is over
    expect(ct.size).toBe(0);
    tcp(ct, C, S, 1000, 80, ACK, 102, 502, 20_000); // the duplicate arrives
    expect(ct.get(ct.lastId)!.expiresAt).toBe(80_000);
    expect(ct.expire(80_000)).toBe(1);
    expect(ct.size).toBe(0);
  });

  it('a picked-up entry that sees a reply gets the established timeout and lives on', () => {
    const ct = mk();
    tcp(ct, C, S, 1000, 80, ACK, 101, 501, 0);
    const id = ct.lastId;
    expect(tcp(ct, S, C, 80, 1000, ACK, 501, 101, 10_000)).toBe(CT_RESULT.ALIVE);
    let e = ct.get(id)!;
    expect([e.replied, e.timeoutClass, e.expiresAt]).toEqual([true, 'established', 10_000 + 21_600_000]);
    expect(ct.expire(60_000 + 10_000)).toBe(0);
    // Later packets from the originator alone keep the established timeout: a reply was seen once.
    tcp(ct, C, S, 1000, 80, ACK, 101, 501, 100_000);
    e = ct.get(id)!;
    expect([e.timeoutClass, e.expiresAt]).toEqual(['established', 100_000 + 21_600_000]);
    expect(ct.expire(100_000 + 21_599_999)).toBe(0);
    expect(ct.size).toBe(1);
    expect(ct.expire(100_000 + 21_600_000)).toBe(1);
    expect(ct.stats.unrepliedExpirations).toBe(0);
  });

  it('a SYN-started flow is on the SYN timeout until answered, then on the established one', () => {
    const ct = mk();
    tcp(ct, C, S, 1000, 80, SYN, 100, 0, 0);
    const id = ct.lastId;
    expect([ct.get(id)!.replied, ct.get(id)!.timeoutClass, ct.get(id)!.expiresAt]).toEqual([false, 'syn', 60_000]);
    tcp(ct, S, C, 80, 1000, SYN | ACK, 500, 101, 1000);
    expect([ct.get(id)!.state, ct.get(id)!.replied, ct.get(id)!.timeoutClass, ct.get(id)!.expiresAt]).toEqual(['SYN_RECV', true, 'syn', 61_000]);
    tcp(ct, C, S, 1000, 80, ACK, 101, 501, 2000);
    expect([ct.get(id)!.state, ct.get(id)!.timeoutClass, ct.get(id)!.expiresAt]).toEqual(['ESTABLISHED', 'established', 2000 + 21_600_000]);
    expect(ct.expire(2000 + 21_599_999)).toBe(0);
    expect(ct.size).toBe(1);
  });

  it('honours a configured tcpUnreplied, as a cap on every TCP state\'s timeout', () => {
    const ct = mk({ timeouts: { tcpUnreplied: 5000, tcpSyn: 120_000 } });
    expect(ct.timeouts.tcpUnreplied).toBe(5000);
    tcp(ct, C, S, 1000, 80, ACK, 101, 501, 0); // pickup
    tcp(ct, C, S, 1001, 80, SYN, 100, 0, 0); // a SYN nobody answers: min(120 s, 5 s)
    tcp(ct, C, S, 1002, 80, SYN, 100, 0, 0); // a SYN that is answered: back to tcpSyn
    tcp(ct, S, C, 80, 1002, SYN | ACK, 500, 101, 0);
    const byPort = new Map(ct.snapshot().map((e) => [e.sport, [e.timeoutClass, e.expiresAt]]));
    expect(byPort.get(1000)).toEqual(['unreplied', 5000]);
    expect(byPort.get(1001)).toEqual(['unreplied', 5000]);
    expect(byPort.get(1002)).toEqual(['syn', 120_000]);
    expect(ct.expire(4999)).toBe(0);
    expect(ct.expire(5000)).toBe(2);
    expect([ct.size, ct.stats.unrepliedExpirations]).toEqual([1, 2]);
    // A cap longer than a state's own timeout changes nothing for that state.
    const long = mk({ timeouts: { tcpUnreplied: 600_000, tcpEstablished: 300_000 } });
    tcp(long, C, S, 1000, 80, ACK, 101, 501, 0);
    expect([long.snapshot()[0]!.timeoutClass, long.snapshot()[0]!.expiresAt]).toEqual(['established', 300_000]);
  });

  it('rejects bad timeout values and unknown timeout names', () => {
    const bad: unknown[] = [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '5000', null];
    for (const v of bad) {
      expect(() => mk({ timeouts: { tcpUnreplied: v as number } }), String(v)).toThrow(InvalidArgumentError);
      expect(() => mk({ timeouts: { tcpEstablished: v as number } }), String(v)).toThrow(/tcpEstablished must be a finite number of ms > 0/);
    }
    expect(() => mk({ timeouts: { tcpUnreplyed: 5000 } as Partial<CtTimeouts> })).toThrow(/unknown conntrack timeout "tcpUnreplyed"/);
    const err = ((): unknown => { try { mk({ timeouts: { tcpUnreplied: 0 } }); } catch (e) { return e; } return null; })();
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).code).toBe('ERR_STRATA_INVALID_ARG');
    expect(mk({ timeouts: { tcpUnreplied: 0.5 } }).timeouts.tcpUnreplied).toBe(0.5);
  });

  it('an ACK flood into a full table evicts the unanswered pickups, not established flows', () => {
    const ct = mk({ maxEntries: 8 });
    for (let i = 0; i < 4; i++) open(ct, 1000 + i, i);
    for (let i = 0; i < 1000; i++) tcp(ct, (0x0b000000 + i) >>> 0, S, 20000 + (i & 1023), 80, ACK, i, 7, 10 + i);
    const entries = ct.snapshot();
    expect(entries.filter((e) => e.timeoutClass === 'established').map((e) => e.sport).sort()).toEqual([1000, 1001, 1002, 1003]);
    expect(entries.filter((e) => e.timeoutClass === 'unreplied')).toHaveLength(4);
    expect(ct.stats.evictions).toBe(1000 - 4);
    // The survivors go 60 s after their last packet, the established flows stay.
    ct.expire(10 + 999 + 60_000);
    expect(ct.snapshot().map((e) => e.timeoutClass)).toEqual(['established', 'established', 'established', 'established']);
    expect(ct.stats.unrepliedExpirations).toBe(4);
  });
});

describe('UDP and ICMP', () => {
  it('UDP is CONNECTING until a reply, then ALIVE; counters each way', () => {
    const ct = mk();
    expect(udp(ct, C, S, 5000, 53, 10, 20)).toBe(CT_RESULT.CONNECTING);
    expect(udp(ct, C, S, 5000, 53, 20, 30)).toBe(CT_RESULT.CONNECTING);
    expect(udp(ct, S, C, 53, 5000, 30, 200)).toBe(CT_RESULT.ALIVE);
    expect(ct.lastDir).toBe(1);
    const e = ct.get(ct.lastId)!;
    expect([e.state, e.packets, e.bytes, e.firstSeen, e.lastSeen]).toEqual(['REPLIED', [2, 1], [48 + 58, 228], 10, 30]);
  });

  it('ICMP echo is tracked by identifier; an ICMP error is related to the flow it quotes', () => {
    const ct = mk();
    const echo = (src: number, dst: number, type: number, id: number): Uint8Array => {
      const b = new Uint8Array(28);
      const dv = new DataView(b.buffer);
      b[0] = 0x45; dv.setUint16(2, 28); b[9] = 1; dv.setUint32(12, src); dv.setUint32(16, dst);
      b[20] = type; dv.setUint16(24, id);
      return b;
    };
    expect(ct.track(echo(C, S, 8, 77), 0, CT_HOOK.IN, 0)).toBe(CT_RESULT.CONNECTING);
    expect(ct.track(echo(S, C, 0, 77), 0, CT_HOOK.OUT, 1)).toBe(CT_RESULT.ALIVE);
    expect(ct.lastDir).toBe(1);
    expect(ct.track(echo(S, C, 0, 78), 0, CT_HOOK.OUT, 1)).toBe(CT_UNTRACKED); // a reply nobody asked for
    // UDP C:5000 → S:9; S answers port unreachable quoting that datagram.
    udp(ct, C, S, 5000, 9, 2);
    const err = new Uint8Array(20 + 8 + 28);
    const dv = new DataView(err.buffer);
    err[0] = 0x45; dv.setUint16(2, err.length); err[9] = 1; dv.setUint32(12, S); dv.setUint32(16, C);
    err[20] = 3; err[21] = 3;
    err[28] = 0x45; dv.setUint16(30, 28); err[37] = 17; dv.setUint32(40, C); dv.setUint32(44, S);
    dv.setUint16(48, 5000); dv.setUint16(50, 9);
    const id = ct.lastId;
    expect(ct.track(err, 0, CT_HOOK.OUT, 3)).toBe(CT_RESULT.CONNECTING);
    expect([ct.lastId, ct.lastDir, ct.stats.related]).toEqual([id, 1, 1]);
    expect(ct.get(id)!.packets).toEqual([1, 1]);
    expect(ct.get(id)!.state).toBe('NEW'); // an error is not a reply
  });

  it('later fragments and malformed headers are counted, not tracked', () => {
    const ct = mk();
    const b = new Uint8Array(40);
    const dv = new DataView(b.buffer);
    b[0] = 0x45; dv.setUint16(2, 40); dv.setUint16(6, 0x0010); b[9] = 17;
    expect(ct.track(b, 0, CT_HOOK.IN, 0)).toBe(CT_UNTRACKED);
    dv.setUint16(6, 0); dv.setUint16(2, 60);
    expect(ct.track(b, 0, CT_HOOK.IN, 0)).toBe(CT_UNTRACKED);
    expect([ct.invalid.get('fragment'), ct.invalid.get('malformed'), ct.size]).toEqual([1, 1, 0]);
  });
});

describe('bounded size', () => {
  it('evicts the least recently seen entry of a class when full, and counts it', () => {
    const removed: [number, number][] = [];
    const ct = mk({ maxEntries: 4, onRemove: (e, cause) => { removed.push([e.sport, cause]); } });
    for (let i = 0; i < 6; i++) udp(ct, C, S, 6000 + i, 53, i);
    expect([ct.size, ct.stats.evictions, ct.stats.inserts]).toEqual([4, 2, 6]);
    expect(removed).toEqual([[6000, CT_END.EVICTED], [6001, CT_END.EVICTED]]);
    expect(ct.snapshot().map((e) => e.sport).sort()).toEqual([6002, 6003, 6004, 6005]);
    // A packet refreshes its entry: 6002 is now the most recent and survives.
    udp(ct, C, S, 6002, 53, 10);
    udp(ct, C, S, 6006, 53, 11);
    expect(ct.snapshot().map((e) => e.sport).sort()).toEqual([6002, 6004, 6005, 6006]);
  });

  it('reclaims an expired entry before evicting a live one', () => {
    const ct = mk({ maxEntries: 2 });
    udp(ct, C, S, 6000, 53, 0);
    open(ct, 1000, 100);
    udp(ct, C, S, 6001, 53, 60_000);
    expect([ct.stats.expirations, ct.stats.evictions, ct.size]).toEqual([1, 0, 2]);
  });

  it('a SYN flood into a full table evicts half-open entries, not established flows', () => {
    const ct = mk({ maxEntries: 8 });
    for (let i = 0; i < 4; i++) open(ct, 1000 + i, i);
    for (let i = 0; i < 1000; i++) tcp(ct, (0x0b000000 + i) >>> 0, S, 20000 + (i & 1023), 80, SYN, i, 0, 10 + i);
    const states = ct.snapshot().map((e) => e.state);
    expect(states.filter((s) => s === 'ESTABLISHED')).toHaveLength(4);
    expect(states.filter((s) => s === 'SYN_SENT')).toHaveLength(4);
    expect(ct.stats.evictions).toBe(1000 - 4);
    // 'lru' evicts by last-seen regardless of class.
    const lru = mk({ maxEntries: 8, evict: 'lru' });
    for (let i = 0; i < 4; i++) open(lru, 1000 + i, i);
    for (let i = 0; i < 8; i++) tcp(lru, (0x0b000000 + i) >>> 0, S, 20000 + i, 80, SYN, i, 0, 10 + i);
    expect(lru.snapshot().every((e) => e.state === 'SYN_SENT')).toBe(true);
  });
});

describe('policy', () => {
  it('a policy denying a new flow drops it and every later packet with reason policy', () => {
    const asked: number[] = [];
    const ct = mk({ policy: (p) => { asked.push(p.dport); return p.dport !== 23; } });
    expect(tcp(ct, C, S, 1000, 23, SYN, 1, 0, 0)).toBe(CT_RESULT.DROP);
    expect(tcp(ct, C, S, 1000, 23, SYN, 1, 0, 1)).toBe(CT_RESULT.DROP);
    expect(tcp(ct, S, C, 23, 1000, SYN | ACK, 9, 2, 2)).toBe(CT_RESULT.DROP);
    open(ct, 1001, 3);
    expect(asked).toEqual([23, 80]); // once per flow, not per packet
    expect(ct.invalid.get('policy')).toBe(3);
    const denied = ct.snapshot().find((e) => e.dport === 23)!;
    expect([denied.denied, denied.packets]).toEqual([true, [0, 0]]);
  });

  it('L4 deny rules: source prefix, optional port, TCP or any protocol, ingress only; setPolicy re-judges live flows', () => {
    const rules = ctDenyPolicy([
      { prefix: '10.200.0.0/24', family: 4, prefixLen: 24, port: 22, protocol: 'TCP' },
      { prefix: '192.0.2.0/25', family: 4, prefixLen: 25, protocol: 'ANY' },
      { prefix: '2001:db8::/32', family: 6, prefixLen: 32, protocol: 'ANY' },
    ]);
    expect([rules.rules, rules.skipped]).toEqual([2, 1]);
    const ct = mk();
    expect(tcp(ct, C, S, 1000, 22, SYN, 1, 0, 0)).toBe(CT_RESULT.CONNECTING); // before the policy exists
    open(ct, 1001, 0);
    expect(udp(ct, 0xc0000205, S, 5000, 53, 0)).toBe(CT_RESULT.CONNECTING); // 192.0.2.5
    expect(ct.setPolicy(rules.policy)).toBe(2);
    expect(tcp(ct, C, S, 1000, 22, SYN, 1, 0, 1)).toBe(CT_RESULT.DROP);
    expect(tcp(ct, C, S, 1001, 80, ACK, 101, 501, 1)).toBe(CT_RESULT.ALIVE);
    expect(udp(ct, 0xc0000205, S, 5000, 53, 1)).toBe(CT_RESULT.DROP);
    expect(udp(ct, 0xc0000285, S, 5000, 53, 1)).toBe(CT_RESULT.CONNECTING); // 192.0.2.133: outside /25
    expect(udp(ct, C, S, 5000, 22, 1)).toBe(CT_RESULT.CONNECTING); // port 22 but UDP, rule is TCP only
    expect(udp(ct, S, 0xc0000206, 5000, 53, 1, 10, CT_HOOK.OUT)).toBe(CT_RESULT.CONNECTING); // we originate: not ingress
    expect(ct.setPolicy(undefined)).toBe(0);
    expect(udp(ct, 0xc0000205, S, 5000, 53, 2)).toBe(CT_RESULT.CONNECTING);
    expect(() => ctDenyPolicy([{ prefix: '10.0.0.300/8', family: 4, prefixLen: 8, protocol: 'ANY' }])).toThrow();
  });

  it('deny(id) marks an existing flow; allow(id) lifts it', () => {
    const ct = mk();
    open(ct, 1000, 0);
    const id = ct.lastId;
    expect(ct.deny(id)).toBe(true);
    expect(tcp(ct, C, S, 1000, 80, ACK, 101, 501, 1)).toBe(CT_RESULT.DROP);
    expect(ct.get(id)!.result).toBe(CT_RESULT.DROP);
    expect(ct.allow(id)).toBe(true);
    expect(tcp(ct, C, S, 1000, 80, ACK, 101, 501, 2)).toBe(CT_RESULT.ALIVE);
    expect(ct.deny(id + 12345)).toBe(false);
  });
});

describe('snapshot and hooks', () => {
  it('get(id), forEach without copies, entries(), flowId and user slots, delete', () => {
    const ct = mk();
    for (let i = 0; i < 5; i++) udp(ct, C, S, 7000 + i, 53, i);
    const ids = ct.snapshot().map((e) => e.id);
    expect(new Set(ids).size).toBe(5);
    let views = 0;
    let first: unknown;
    ct.forEach((v) => { views++; first ??= v; expect(v).toBe(first); });
    expect(views).toBe(5);
    expect([...ct.entries()].length).toBe(5);
    const id = ids[2]!;
    expect(ct.setFlowId(id, 99)).toBe(true);
    const tag = { note: 'x' };
    ct.setUser(id, tag);
    expect(ct.get(id)!.flowId).toBe(99);
    expect(ct.user(id)).toBe(tag);
    expect(ct.lookup(IPPROTO.UDP, S, C, 53, 7002)).toBe(id);
    expect(ct.lastDir).toBe(1);
    expect(ct.lookup(IPPROTO.UDP, S, C, 53, 9999)).toBe(0);
    expect(ct.delete(id)).toBe(true);
    expect([ct.get(id), ct.user(id), ct.size, ct.stats.deletes]).toEqual([undefined, undefined, 4, 1]);
    // The slot is reused with a new id; the old id stays dead.
    udp(ct, C, S, 7100, 53, 10);
    expect(ct.lastId).not.toBe(id);
    expect(ct.get(id)).toBeUndefined();
    expect(ct.get(ct.lastId)!.flowId).toBe(0);
    ct.clear();
    expect(ct.size).toBe(0);
  });

  it('publishes new/end events on diagnostics_channel only to subscribers', () => {
    const ct = mk();
    const news: CtEntryInfo[] = [];
    const ends: string[] = [];
    const onNew = (e: CtEntryInfo): void => { news.push(e); };
    const onEnd = (e: { cause: string }): void => { ends.push(e.cause); };
    conntrackNewEvents.subscribe(onNew);
    conntrackEndEvents.subscribe(onEnd);
    try {
      udp(ct, C, S, 5000, 53, 0);
      ct.expire(60_000);
    } finally {
      conntrackNewEvents.unsubscribe(onNew);
      conntrackEndEvents.unsubscribe(onEnd);
    }
    udp(ct, C, S, 5001, 53, 60_001);
    expect(news.map((e) => e.sport)).toEqual([5000]);
    expect(ends).toEqual(['expired']);
  });

  it('registers metrics that parse as Prometheus text', () => {
    const ct = mk({ metricLabels: { table: 'tap' } });
    const reg = new Registry();
    registerConntrackMetrics(reg, ct);
    udp(ct, C, S, 5000, 53, 0);
    tcp(ct, C, S, 1, 2, SYN | FIN, 0, 0, 0);
    const fams = parsePrometheusTextFormat(reg.render()) as { name: string; metrics: { value: string; labels?: Record<string, string> }[] }[];
    const v = (n: string, reason?: string): number => Number(fams.find((f) => f.name === n)!.metrics.find((m) => reason === undefined || m.labels!.reason === reason)!.value);
    expect(v('strata_conntrack_entries')).toBe(1);
    expect(v('strata_conntrack_inserts_total')).toBe(1);
    expect(v('strata_conntrack_invalid_total', 'bad_flags')).toBe(1);
    ct.expire(60_000);
    const after = parsePrometheusTextFormat(reg.render()) as typeof fams;
    expect(after.find((f) => f.name === 'strata_conntrack_unreplied_expirations_total')!.metrics[0]!.value).toBe('1');
    expect(fams.find((f) => f.name === 'strata_conntrack_invalid_total')!.metrics[0]!.labels!.table).toBe('tap');
  });
});

describe('churn', () => {
  it('100,000 sequential short connections return the table to baseline', () => {
    const ct = mk({ maxEntries: 65536 });
    let now = 0;
    let peak = 0;
    for (let n = 0; n < 100_000; n++) {
      const sp = 1024 + (n % 60000);
      const src = (0x0a000000 + Math.floor(n / 60000)) >>> 0;
      expect(tcp(ct, src, S, sp, 80, SYN, 100, 0, now)).toBe(CT_RESULT.CONNECTING);
      tcp(ct, S, src, 80, sp, SYN | ACK, 500, 101, now);
      tcp(ct, src, S, sp, 80, ACK | TCPF.PSH, 101, 501, now, 10);
      tcp(ct, src, S, sp, 80, FIN | ACK, 111, 501, now);
      tcp(ct, S, src, 80, sp, FIN | ACK, 501, 112, now);
      const r = tcp(ct, src, S, sp, 80, ACK, 112, 502, now);
      if (r !== CT_RESULT.CLOSED_BY_ORIGINATOR) throw new Error(`flow ${n} ended ${r}`);
      now += 1;
      if ((n & 1023) === 0) ct.expire(now);
      if (ct.size > peak) peak = ct.size;
    }
    ct.expire(now + 10_000);
    expect(ct.size).toBe(0);
    expect(ct.nextExpiry()).toBeUndefined();
    expect([ct.stats.inserts, ct.stats.expirations, ct.stats.evictions]).toEqual([100_000, 100_000, 0]);
    expect(peak).toBeLessThanOrEqual(10_000 + 1024 + 1); // TIME_WAIT is 10 s at one flow per ms
    expect(ct.invalid.total()).toBe(0);
    // The index is empty again: a fresh flow inserts and is found normally.
    open(ct, 1000, now + 20_000);
    expect(ct.size).toBe(1);
    expect(ct.get(ct.lastId)!.state).toBe('ESTABLISHED');
  });
});

describe('randomized against a reference model', () => {
  interface Ref { src: number; dst: number; sp: number; dp: number; expires: number; replied: boolean; pkts: [number, number]; bytes: [number, number]; first: number; last: number }

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`seed ${seed}: UDP flows, replies, expiry, deletes and eviction match a Map model`, () => {
      const rng = new Prng(seed);
      const MAX = 64;
      const ct = new Conntrack({ seed, maxEntries: MAX, timeouts: { other: 5000 } });
      // Map iteration order is the model's LRU order: a refresh re-inserts.
      let evictions = 0;
      let expirations = 0;
      const model = new Map<string, Ref>();
      const key = (a: number, b: number, x: number, y: number): string => `${a}:${b}:${x}:${y}`;
      const addrs = [0x0a000001, 0x0a000002, 0x0a000003, 0x0a000004];
      let now = 0;
      for (let step = 0; step < 20_000; step++) {
        now += (step >> 11) & 1 ? rng.int(400) : rng.int(10); // bursts fill the table, lulls let flows expire
        const op = rng.int(100);
        if (op < 2) {
          const n = ct.expire(now);
          let m = 0;
          for (const [k, e] of model) if (e.expires <= now) { model.delete(k); m++; }
          expirations += m;
          expect(n).toBe(m);
        } else if (op < 4 && model.size > 0) {
          const victims = [...model.values()];
          const v = victims[rng.int(victims.length)]!;
          const id = ct.lookup(IPPROTO.UDP, v.src, v.dst, v.sp, v.dp, now);
          if (v.expires <= now) {
            expect(id).toBe(0); // past its timeout: absent to lookups, still held until swept
          } else {
            expect(id).not.toBe(0);
            expect(ct.delete(id)).toBe(true);
            model.delete(key(v.src, v.dst, v.sp, v.dp));
          }
        } else {
          const a = addrs[rng.int(4)]!;
          let b = addrs[rng.int(4)]!;
          if (b === a) b = addrs[(addrs.indexOf(a) + 1) & 3]!;
          const sp = 1000 + rng.int(8);
          const dp = 53 + rng.int(2);
          const len = rng.int(1400);
          const r = udp(ct, a, b, sp, dp, now, len);
          let dir = 0;
          let e = model.get(key(a, b, sp, dp));
          if (e === undefined) { e = model.get(key(b, a, dp, sp)); dir = 1; }
          if (e !== undefined && e.expires <= now) { model.delete(key(e.src, e.dst, e.sp, e.dp)); e = undefined; expirations++; }
          if (e === undefined) {
            dir = 0;
            if (model.size === MAX) {
              const [k0, lru] = model.entries().next().value as [string, Ref];
              model.delete(k0);
              if (lru.expires <= now) expirations++; else evictions++;
            }
            e = { src: a, dst: b, sp, dp, expires: 0, replied: false, pkts: [0, 0], bytes: [0, 0], first: now, last: now };
            model.set(key(a, b, sp, dp), e);
          }
          if (dir === 1) e.replied = true;
          e.pkts[dir]++;
          e.bytes[dir] += 28 + len;
          e.last = now;
          e.expires = now + 5000;
          model.delete(key(e.src, e.dst, e.sp, e.dp));
          model.set(key(e.src, e.dst, e.sp, e.dp), e);
          if (r !== (e.replied ? CT_RESULT.ALIVE : CT_RESULT.CONNECTING) || ct.lastDir !== dir) {
            throw new Error(`step ${step}: result ${r} dir ${ct.lastDir}, model replied ${e.replied} dir ${dir}`);
          }
        }
        if (ct.size !== model.size) throw new Error(`step ${step}: size ${ct.size}, model ${model.size}`);
      }
      const got = ct.snapshot().map((x) => [x.src, x.dst, x.sport, x.dport, x.packets, x.bytes, x.replied, x.firstSeen, x.lastSeen, x.expiresAt]);
      const want = [...model.values()].map((x) => [x.src, x.dst, x.sp, x.dp, x.pkts, x.bytes, x.replied, x.first, x.last, x.expires]);
      const order = (r: unknown[]): string => JSON.stringify(r.slice(0, 4));
      expect(got.sort((p, q) => order(p).localeCompare(order(q)))).toEqual(want.sort((p, q) => order(p).localeCompare(order(q))));
      expect([ct.stats.evictions, ct.stats.expirations]).toEqual([evictions, expirations]);
      expect(evictions).toBeGreaterThan(0);
      expect(expirations).toBeGreaterThan(0);
    });
  }
});
