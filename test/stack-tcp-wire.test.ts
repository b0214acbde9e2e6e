// wire/tcp.ts (header and options, zero-copy) and the congestion-control
// algorithms in isolation.
import { describe, expect, it } from 'vitest';
import {
  FLAG, OPT, TCP, TcpOptions, TcpOptionsOut, parseTcpOptions, tcpAck, tcpFlags, tcpHeaderLen, tcpHeaderOk, tcpOptionsLen,
  tcpSeq, tcpWindow, writeTcpHeader, writeTcpOptions, flagsToString,
} from '../src/stack/wire/tcp.js';
import { finish, pseudo4, sum16 } from '../src/stack/wire/checksum.js';
import { buildSegment } from '../src/stack/tcp/testing.js';
import { NewReno } from '../src/stack/tcp/congestion/newreno.js';
import { Cubic } from '../src/stack/tcp/congestion/cubic.js';
import type { CcState } from '../src/stack/tcp/congestion/types.js';
import { ByteRing } from '../src/stack/tcp/ring.js';
import { seqGt, seqLt, seqAdd, seqDiff } from '../src/stack/tcp/seq.js';

describe('wire/tcp', () => {
  it('round-trips every option in Linux layout', () => {
    const o = new TcpOptionsOut();
    o.mss = 1460; o.wscale = 7; o.sackPermitted = true; o.timestamps = true; o.tsVal = 0xdeadbeef; o.tsEcr = 42;
    const buf = new Uint8Array(80);
    const n = writeTcpOptions(buf, 20, o);
    expect(n).toBe(tcpOptionsLen(o));
    expect(n).toBe(20); // MSS 4 + SACK_PERM/TS 12 + NOP/WS 4
    expect([...buf.subarray(20, 24)]).toEqual([OPT.MSS, 4, 0x05, 0xb4]);
    expect([...buf.subarray(24, 26)]).toEqual([OPT.SACK_PERMITTED, 2]);
    writeTcpHeader(buf, 0, 1234, 80, 0xfffffff0, 7, FLAG.SYN | FLAG.ACK, 65535, n);
    expect(tcpHeaderOk(buf, 0, 20 + n)).toBe(true);
    expect(tcpHeaderLen(buf, 0)).toBe(40);
    expect(tcpSeq(buf, 0)).toBe(0xfffffff0);
    expect(tcpAck(buf, 0)).toBe(7);
    expect(flagsToString(tcpFlags(buf, 0))).toBe('S.');
    expect(tcpWindow(buf, 0)).toBe(65535);
    const p = new TcpOptions();
    expect(parseTcpOptions(buf, 0, p)).toBe(true);
    expect([p.mss, p.wscale, p.sackPermitted, p.hasTimestamps, p.tsVal, p.tsEcr]).toEqual([1460, 7, true, true, 0xdeadbeef, 42]);
    expect(p.at[OPT.MSS]).toBe(20); // the offset table
  });

  it('parses SACK blocks and clamps a window scale above 14', () => {
    // Timestamps + 3 SACK blocks fill the 40 option bytes exactly.
    const seg = buildSegment({ src: 1, dst: 2, sport: 1, dport: 2, flags: FLAG.ACK, sack: [[100, 200], [300, 400], [0xfffffff0, 5]], ts: [1, 2] });
    expect(tcpHeaderLen(seg, 0)).toBe(60);
    const p = new TcpOptions();
    expect(parseTcpOptions(seg, 0, p)).toBe(true);
    const syn = buildSegment({ src: 1, dst: 2, sport: 1, dport: 2, flags: FLAG.SYN, wscale: 15 });
    const q = new TcpOptions();
    expect(parseTcpOptions(syn, 0, q)).toBe(true);
    expect(q.wscale).toBe(14);
    expect(p.sackCount).toBe(3);
    expect([...p.sack.subarray(0, 6)]).toEqual([100, 200, 300, 400, 0xfffffff0, 5]);
  });

  it('rejects malformed options: a length past the header, a wrong length for a known kind', () => {
    const base = buildSegment({ src: 1, dst: 2, sport: 1, dport: 2, flags: FLAG.SYN, mss: 1460 });
    const p = new TcpOptions();
    const bad1 = base.slice(); bad1[21] = 40; // MSS length runs past the header
    expect(parseTcpOptions(bad1, 0, p)).toBe(false);
    const bad2 = base.slice(); bad2[21] = 3; // MSS must be 4 long
    expect(parseTcpOptions(bad2, 0, p)).toBe(false);
    const bad3 = base.slice(); bad3[21] = 0; // zero length would loop forever
    expect(parseTcpOptions(bad3, 0, p)).toBe(false);
    // A data offset beyond the segment fails the header check.
    const bad4 = base.slice(); bad4[TCP.DATA_OFF] = 0xf0;
    expect(tcpHeaderOk(bad4, 0, bad4.length)).toBe(false);
  });

  it('checksums validate over the pseudo-header', () => {
    const seg = buildSegment({ src: 0x0a000001, dst: 0x0a000002, sport: 5, dport: 6, flags: FLAG.ACK, payload: new Uint8Array([1, 2, 3]) });
    expect(finish(sum16(seg, 0, seg.length, pseudo4(0x0a000001, 0x0a000002, 6, seg.length)))).toBe(0);
    seg[seg.length - 1]! ^= 1;
    expect(finish(sum16(seg, 0, seg.length, pseudo4(0x0a000001, 0x0a000002, 6, seg.length)))).not.toBe(0);
  });
});

describe('sequence numbers and the byte ring', () => {
  it('compares across the 2^32 wrap', () => {
    expect(seqLt(0xfffffff0, 5)).toBe(true);
    expect(seqGt(5, 0xfffffff0)).toBe(true);
    expect(seqAdd(0xffffffff, 2)).toBe(1);
    expect(seqDiff(1, 0xffffffff)).toBe(2);
  });

  it('grows lazily, wraps, and keeps out-of-order bytes placed beyond the readable ones', () => {
    const r = new ByteRing(64, 8);
    const src = Uint8Array.from({ length: 64 }, (_, i) => i);
    expect(r.write(src, 0, 10)).toBe(10);
    r.writeAt(20, src, 20, 5); // an island
    const out = new Uint8Array(10);
    r.readAt(0, out, 0, 10);
    expect([...out]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    r.consume(10);
    r.writeAt(0, src, 10, 10); // the hole fills
    r.commit(15);
    const all = new Uint8Array(15);
    r.readAt(0, all, 0, 15);
    expect([...all]).toEqual(Array.from({ length: 15 }, (_, i) => i + 10));
    expect(r.free).toBe(64 - 15);
    expect(r.write(src, 0, 100)).toBe(49); // bounded by capacity
  });

  it('small and large copies, wrapped or not, read back what was written (the byte loop and the view paths agree)', () => {
    const r = new ByteRing(256, 256);
    const model: number[] = [];
    let seed = 7;
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed % n; };
    const src = Uint8Array.from({ length: 300 }, (_, i) => (i * 7) & 0xff);
    for (let step = 0; step < 2000; step++) {
      const n = [1, 5, 14, 31, 32, 33, 47, 100][rnd(8)]!;
      const off = rnd(200);
      const k = r.write(src, off, n);
      for (let i = 0; i < k; i++) model.push(src[off + i]!);
      const take = Math.min(r.length, [0, 3, 14, 32, 33, 90][rnd(6)]!);
      const out = new Uint8Array(take + 4);
      r.readAt(0, out, 2, take);
      expect([...out.subarray(2, 2 + take)]).toEqual(model.slice(0, take));
      r.consume(take);
      model.splice(0, take);
    }
  });
});

function state(mss = 1000): CcState & { cwnd: number; ssthresh: number; flight: number; srtt: number } {
  return { cwnd: 0, ssthresh: 0, mss, srtt: 100, flight: 0 };
}

describe('congestion control', () => {
  it('NewReno: IW10, slow start by ABC, halving on loss, linear avoidance', () => {
    const cc = new NewReno();
    const s = state();
    cc.init(s, 0);
    expect(s.cwnd).toBe(10_000);
    cc.onAck(s, 1000, 100, 0);
    expect(s.cwnd).toBe(11_000);
    s.flight = 20_000;
    s.ssthresh = cc.ssthresh(s, 0);
    expect(s.ssthresh).toBe(10_000);
    s.cwnd = s.ssthresh;
    cc.onAck(s, 1000, 100, 0);
    expect(s.cwnd).toBe(10_100); // + MSS*MSS/cwnd
  });

  it('CUBIC: β = 0.7 reduction, concave growth back toward W_max, then convex beyond it', () => {
    const cc = new Cubic();
    const s = state();
    cc.init(s, 0);
    s.cwnd = 100_000; // 100 segments
    s.flight = 100_000;
    s.ssthresh = cc.ssthresh(s, 0);
    expect(s.ssthresh).toBe(70_000);
    s.cwnd = s.ssthresh;
    // One ACK per segment for a while on a 100 ms RTT: grows, quickly at first, then flattens near W_max.
    const trace: number[] = [];
    let now = 0;
    for (let rtt = 0; rtt < 60; rtt++) {
      const acks = Math.floor(s.cwnd / 1000);
      for (let i = 0; i < acks; i++) cc.onAck(s, 1000, 100, now);
      now += 100;
      trace.push(s.cwnd);
    }
    const k = Math.cbrt((100 * 0.3) / 0.4); // seconds until W_max is regained (≈ 4.2 s)
    const atK = trace[Math.round(k * 10) - 1]!;
    expect(atK).toBeGreaterThan(95_000);
    expect(atK).toBeLessThan(110_000);
    // Concave before K: the first second gains more than the second before K.
    expect(trace[9]! - trace[0]!).toBeGreaterThan(trace[Math.round(k * 10) - 1]! - trace[Math.round(k * 10) - 11]!);
    // Convex after K: growth accelerates.
    expect(trace[59]! - trace[49]!).toBeGreaterThan(trace[Math.round(k * 10) + 9]! - trace[Math.round(k * 10) - 1]!);
  });

  it('CUBIC fast convergence lowers W_max when the window shrinks between losses', () => {
    const cc = new Cubic();
    const s = state();
    cc.init(s, 0);
    s.cwnd = 100_000; s.flight = 100_000;
    cc.ssthresh(s, 0);
    s.cwnd = 80_000; s.flight = 80_000; // lost again before regaining 100
    const t = cc.ssthresh(s, 0);
    expect(t).toBe(56_000);
  });
});
