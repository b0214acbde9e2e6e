// Proof that conntrack's packet path allocates nothing: hits in both
// directions (TCP with sequence numbers above 2^31, so not small integers,
// and UDP) and inserts into a full table (which evict) run in one synchronous
// loop after a warm-up. Two witnesses, as in src/bench/alloc.ts: V8's used
// heap before and after (16 bytes per packet would show as tens of MB), and
// no scavenge GC starting inside the loop. No time is asserted.
import { describe, it, expect } from 'vitest';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { CT_RESULT, IPPROTO } from '../src/stack/registration.js';
import { Conntrack, CT_HOOK, TCPF } from '../src/stack/conntrack/index.js';

const S = 0x0ac80003;
const FLOWS = 20_000;

function run(ct: Conntrack, rounds: number, t0: number): number {
  const p = ct.pkt;
  let bad = 0;
  let now = t0;
  for (let r = 0; r < rounds; r++) {
    for (let i = 0; i < FLOWS; i++) {
      const src = (0x0a000000 + i) >>> 0;
      const cseq = (0x90000000 + r) >>> 0;
      p.proto = IPPROTO.TCP; p.src = src; p.dst = S; p.sport = 40000; p.dport = 443; p.related = false; p.icmpType = -1;
      p.flags = TCPF.ACK; p.seq = cseq; p.ack = 0xf0000001; p.win = 512; p.wscale = -1; p.payloadLen = 1; p.ipLen = 41;
      if (ct.trackPacket(p, CT_HOOK.IN, now) !== CT_RESULT.ALIVE) bad++;
      p.src = S; p.dst = src; p.sport = 443; p.dport = 40000;
      p.flags = TCPF.ACK; p.seq = 0xf0000001; p.ack = (cseq + 1) >>> 0; p.payloadLen = 0; p.ipLen = 40;
      if (ct.trackPacket(p, CT_HOOK.OUT, now) !== CT_RESULT.ALIVE) bad++;
      // A new UDP flow each time: the table is full, so every insert evicts.
      p.proto = IPPROTO.UDP; p.src = (0x0b000000 + ((r * FLOWS + i) & 0xffffff)) >>> 0; p.dst = S; p.sport = 5000; p.dport = 53; p.ipLen = 60;
      if (ct.trackPacket(p, CT_HOOK.IN, now) !== CT_RESULT.CONNECTING) bad++;
      p.src = S; p.dst = (0x0b000000 + ((r * FLOWS + i) & 0xffffff)) >>> 0; p.sport = 53; p.dport = 5000;
      if (ct.trackPacket(p, CT_HOOK.OUT, now) !== CT_RESULT.ALIVE) bad++;
    }
    now += 1;
  }
  return bad;
}

describe('conntrack allocation', () => {
  it('tracks hits and evicting inserts without allocating', () => {
    const ct = new Conntrack({ maxEntries: FLOWS + 1024, seed: 3 });
    const p = ct.pkt;
    // Establish FLOWS TCP connections with ISNs near the top of sequence space.
    for (let i = 0; i < FLOWS; i++) {
      const src = (0x0a000000 + i) >>> 0;
      p.proto = IPPROTO.TCP; p.src = src; p.dst = S; p.sport = 40000; p.dport = 443; p.related = false; p.icmpType = -1;
      p.flags = TCPF.SYN; p.seq = 0x8fffffff; p.ack = 0; p.win = 65535; p.wscale = 7; p.payloadLen = 0; p.ipLen = 60;
      ct.trackPacket(p, CT_HOOK.IN, 0);
      p.src = S; p.dst = src; p.sport = 443; p.dport = 40000; p.flags = TCPF.SYN | TCPF.ACK; p.seq = 0xf0000000; p.ack = 0x90000000;
      ct.trackPacket(p, CT_HOOK.OUT, 0);
      p.src = src; p.dst = S; p.sport = 40000; p.dport = 443; p.flags = TCPF.ACK; p.seq = 0x90000000; p.ack = 0xf0000001; p.wscale = -1; p.win = 512;
      ct.trackPacket(p, CT_HOOK.IN, 0);
    }
    expect(ct.snapshot().filter((e) => e.state === 'ESTABLISHED')).toHaveLength(FLOWS);

    expect(run(ct, 20, 1)).toBe(0); // warm-up: let the JIT settle
    const gcs: number[] = [];
    const obs = new PerformanceObserver((list) => { for (const e of list.getEntries()) gcs.push(e.startTime); });
    obs.observe({ entryTypes: ['gc'] });
    const rounds = 50;
    const heap0 = v8.getHeapStatistics().used_heap_size;
    const tStart = performance.now();
    const bad = run(ct, rounds, 100);
    const tEnd = performance.now();
    const heap1 = v8.getHeapStatistics().used_heap_size;
    return new Promise<void>((resolve, reject) => setTimeout(() => {
      obs.disconnect();
      try {
      const packets = rounds * FLOWS * 4;
      const inLoop = gcs.filter((t) => t >= tStart && t <= tEnd).length;
      expect(bad).toBe(0);
      expect(ct.stats.evictions).toBeGreaterThan(packets / 4 - 1024);
      expect(ct.invalid.total()).toBe(0);
      expect(inLoop).toBe(0);
        expect((heap1 - heap0) / packets).toBeLessThan(0.5); // < half a byte per packet: nothing per packet
        resolve();
      } catch (e) { reject(e); }
    }, 50));
  });
});
