// The TS echo pipeline (src/bench/udp-echo.ts) on a MemLink pair: requests
// built byte by byte on one end, echoed by UdpEcho on the other, and the
// replies checked byte for byte, with checksums verified by an independent
// RFC 1071 implementation written here (not the project's checksum module).
import { describe, expect, test } from 'vitest';
import { MemLink } from '../src/link/mem.js';
import { Burst } from '../src/link/types.js';
import { VirtualClock } from '../src/util/clock.js';
import { UdpEcho, runEcho } from '../src/bench/udp-echo.js';
import { GenLink } from '../src/bench/gen-link.js';

const ECHO_IP = [10, 200, 0, 3];
const CLIENT_IP = [10, 200, 0, 1];
const CLIENT_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x01]; // MemLink end A
const ECHO_MAC = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];   // MemLink end B

/** RFC 1071, the textbook way: sum 16-bit words with end-around carry, complement. */
function rfc1071(bytes: number[]): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i]! << 8) + (i + 1 < bytes.length ? bytes[i + 1]! : 0);
    if (sum > 0xffff) sum = (sum & 0xffff) + 1;
  }
  return (~sum) & 0xffff;
}

function u16(n: number): number[] { return [n >> 8, n & 0xff]; }

interface Req { srcPort: number; dstPort: number; payload: number[]; ttl?: number; dstIp?: number[]; proto?: number; frag?: number; badIpSum?: boolean }

/** An Ethernet/IPv4/UDP frame with both checksums computed. */
function udpFrame(r: Req): number[] {
  const dstIp = r.dstIp ?? ECHO_IP;
  const udpLen = 8 + r.payload.length;
  const pseudo = [...CLIENT_IP, ...dstIp, 0, r.proto ?? 17, ...u16(udpLen)];
  const udpNoSum = [...u16(r.srcPort), ...u16(r.dstPort), ...u16(udpLen), 0, 0, ...r.payload];
  let usum = rfc1071([...pseudo, ...udpNoSum]);
  if (usum === 0) usum = 0xffff;
  const udp = [...udpNoSum.slice(0, 6), ...u16(usum), ...r.payload];
  const ipNoSum = [0x45, 0, ...u16(20 + udpLen), 0x12, 0x34, ...u16(r.frag ?? 0x4000), r.ttl ?? 63, r.proto ?? 17, 0, 0, ...CLIENT_IP, ...dstIp];
  let isum = rfc1071(ipNoSum);
  if (r.badIpSum) isum ^= 0x0101;
  const ip = [...ipNoSum.slice(0, 10), ...u16(isum), ...ipNoSum.slice(12)];
  return [...ECHO_MAC, ...CLIENT_MAC, 0x08, 0x00, ...ip, ...udp];
}

function arpFrame(op: number, targetIp: number[]): number[] {
  return [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, ...CLIENT_MAC, 0x08, 0x06,
    0, 1, 0x08, 0x00, 6, 4, ...u16(op), ...CLIENT_MAC, ...CLIENT_IP, 0, 0, 0, 0, 0, 0, ...targetIp];
}

function setup(burst = 64) {
  const clock = new VirtualClock();
  const [a, b] = MemLink.pair({ seed: 1, clock });
  const echo = new UdpEcho(b, { addrs: ['10.200.0.3'], burst });
  const out = new Burst(256);
  const inb = new Burst(256);
  const send = (frames: number[][]) => {
    expect(a.alloc(out, frames.length)).toBe(frames.length);
    frames.forEach((f, i) => { a.mem.set(f, out.off(i)); out.setLen(i, f.length); });
    a.send(out);
  };
  const recv = (): number[][] => {
    a.recv(inb);
    const got: number[][] = [];
    for (let i = 0; i < inb.count; i++) got.push([...a.mem.subarray(inb.off(i), inb.off(i) + inb.len(i))]);
    a.free(inb);
    return got;
  };
  return { a, b, echo, send, recv, clock };
}

describe('UdpEcho on MemLink', () => {
  test('echoes a UDP datagram with MACs, addresses and ports swapped, TTL reset, checksums valid', () => {
    const { echo, send, recv, b, a } = setup();
    const payload = Array.from({ length: 64 }, (_, i) => (i * 7 + 3) & 0xff);
    const req = udpFrame({ srcPort: 40001, dstPort: 7, payload, ttl: 63 });
    send([req]);
    expect(echo.poll()).toBe(1);
    const [reply, ...more] = recv();
    expect(more).toEqual([]);
    // Expected reply, built independently from the request's fields.
    const udpLen = 8 + payload.length;
    const ipNoSum = [0x45, 0, ...u16(20 + udpLen), 0x12, 0x34, 0x40, 0x00, 64, 17, 0, 0, ...ECHO_IP, ...CLIENT_IP];
    const isum = rfc1071(ipNoSum);
    const pseudo = [...ECHO_IP, ...CLIENT_IP, 0, 17, ...u16(udpLen)];
    const udpNoSum = [...u16(7), ...u16(40001), ...u16(udpLen), 0, 0, ...payload];
    let usum = rfc1071([...pseudo, ...udpNoSum]);
    if (usum === 0) usum = 0xffff;
    const expected = [...CLIENT_MAC, ...ECHO_MAC, 0x08, 0x00, ...ipNoSum.slice(0, 10), ...u16(isum), ...ipNoSum.slice(12),
      ...udpNoSum.slice(0, 6), ...u16(usum), ...payload];
    expect(reply).toEqual(expected);
    // And the checksums verify as a receiver would check them (sum over the header including the checksum is 0).
    expect(rfc1071(reply!.slice(14, 34))).toBe(0);
    expect(rfc1071([...ECHO_IP, ...CLIENT_IP, 0, 17, ...u16(udpLen), ...reply!.slice(34)])).toBe(0);
    expect(echo.stats()).toMatchObject({ rx: 1, echoed: 1, arpReplies: 0, txDropped: 0 });
    expect(a.outstanding()).toBe(0);
    expect(b.outstanding()).toBe(0);
  });

  test('answers an ARP request for its address with the link MAC', () => {
    const { echo, send, recv } = setup();
    send([arpFrame(1, ECHO_IP)]);
    expect(echo.poll()).toBe(1);
    const [reply] = recv();
    expect(reply).toEqual([...CLIENT_MAC, ...ECHO_MAC, 0x08, 0x06,
      0, 1, 0x08, 0x00, 6, 4, 0, 2, ...ECHO_MAC, ...ECHO_IP, ...CLIENT_MAC, ...CLIENT_IP]);
    expect(echo.stats().arpReplies).toBe(1);
  });

  test('drops and counts everything else by reason, and hands every frame back', () => {
    const { echo, send, recv, b } = setup();
    const p = [1, 2, 3, 4];
    send([
      udpFrame({ srcPort: 1, dstPort: 7, payload: p, dstIp: [10, 200, 0, 9] }), // NOT_FOR_US
      udpFrame({ srcPort: 1, dstPort: 7, payload: p, proto: 6 }),               // NOT_UDP
      udpFrame({ srcPort: 1, dstPort: 7, payload: p, frag: 0x2000 }),           // FRAGMENT (MF)
      udpFrame({ srcPort: 1, dstPort: 7, payload: p, badIpSum: true }),          // IP_CHECKSUM
      udpFrame({ srcPort: 1, dstPort: 7, payload: p }).slice(0, 38),            // IP_LENGTH (truncated)
      [...ECHO_MAC, ...CLIENT_MAC, 0x86, 0xdd, ...new Array(60).fill(0)],          // NOT_IP_OR_ARP (IPv6)
      arpFrame(2, ECHO_IP),                                                       // ARP_NOT_REQUEST (a reply)
      arpFrame(1, [10, 200, 0, 2]),                                               // ARP_NOT_FOR_US
      [1, 2, 3],                                                                  // SHORT
      udpFrame({ srcPort: 2, dstPort: 9, payload: p }),                           // echoed
    ]);
    expect(echo.poll()).toBe(10);
    const replies = recv();
    expect(replies).toHaveLength(1);
    expect(replies[0]!.slice(34, 38)).toEqual([0, 9, 0, 2]);
    const st = echo.stats();
    expect(st.echoed).toBe(1);
    expect(st.drops).toEqual({
      SHORT: 1, NOT_IP_OR_ARP: 1, IP_HEADER: 0, IP_CHECKSUM: 1, IP_LENGTH: 1, FRAGMENT: 1, NOT_UDP: 1,
      NOT_FOR_US: 1, ARP_NOT_REQUEST: 1, ARP_NOT_FOR_US: 1,
    });
    expect(b.outstanding()).toBe(0);
  });

  test('moves bursts: 300 datagrams over 8 flows in bursts of 64, each echoed once to its own flow', () => {
    const { echo, send, recv } = setup(64);
    const frames = Array.from({ length: 300 }, (_, i) => udpFrame({ srcPort: 50000 + (i % 8), dstPort: 7, payload: [...u16(i), 0xab, 0xcd] }));
    for (let i = 0; i < 300; i += 100) send(frames.slice(i, i + 100));
    const polls: number[] = [];
    let n: number;
    while ((n = echo.poll()) > 0) polls.push(n);
    expect(polls).toEqual([64, 64, 64, 64, 44]);
    const replies: number[][] = [];
    for (let r = recv(); r.length > 0; r = recv()) replies.push(...r);
    expect(replies).toHaveLength(300);
    replies.forEach((r, i) => {
      expect(r.slice(42, 44)).toEqual(u16(i));
      expect(r.slice(36, 38)).toEqual(u16(50000 + (i % 8)));
      expect(rfc1071(r.slice(14, 34))).toBe(0);
    });
  });

  test('runEcho in event mode answers from the link ready handler', async () => {
    const { echo, send, recv } = setup();
    const runner = runEcho(echo, 'event');
    send([udpFrame({ srcPort: 40000, dstPort: 7, payload: [9, 9] })]);
    for (let k = 0; k < 20 && echo.echoed === 0; k++) await new Promise((r) => setImmediate(r));
    runner.stop();
    expect(recv()).toHaveLength(1);
  });

  test('GenLink sees exact echoes from UdpEcho (the in-process traffic source used by the allocation proof)', () => {
    const gen = new GenLink({ dst: '10.200.0.3', flows: 4, limit: 1000 });
    const echo = new UdpEcho(gen, { addrs: ['10.200.0.3'], burst: 32 });
    let total = 0;
    for (let n = echo.poll(); n > 0; n = echo.poll()) total += n;
    expect(total).toBe(1000);
    expect(gen.goodReplies).toBe(1000);
    expect(gen.badReplies).toBe(0);
    expect(gen.outstanding()).toBe(0);
  });
});
