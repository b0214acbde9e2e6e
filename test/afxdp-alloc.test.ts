// No per-burst JavaScript allocation on the real links' hot paths: alloc,
// free, recv and send on AfXdpLink and TapLink run for hundreds of thousands
// of calls with no young-generation GC inside the loop and no heap growth
// beyond JIT noise. Two witnesses, as in src/bench/alloc.ts: V8's
// used_heap_size and the 'gc' performance entries. No time is asserted.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PerformanceObserver } from 'node:perf_hooks';
import v8 from 'node:v8';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { probeTransports } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { TapLink } from '../src/link/tap.js';
import { Burst, type Link } from '../src/link/types.js';
import type { Lab } from '../src/lab/topo.js';

const probe = probeTransports();
const skip = rootSkipReason() ?? (probe.afxdp.available && probe.tap.available ? null : `${probe.afxdp.reason ?? ''} ${probe.tap.reason ?? ''}`.trim());

// A unicast MAC nobody in the lab owns: the client kernel drops these frames
// at once (PACKET_OTHERHOST), so sending costs the peer almost nothing.
const NOBODY = Uint8Array.of(0x02, 0xde, 0xad, 0xbe, 0xef, 0x01);

async function gcWindow(loop: () => void): Promise<{ minorGcs: number; heapGrowth: number }> {
  const starts: number[] = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind ?? 0;
      if (kind === 1 /* NODE_PERFORMANCE_GC_MINOR */) starts.push(e.startTime);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  const h0 = v8.getHeapStatistics().used_heap_size;
  loop();
  const h1 = v8.getHeapStatistics().used_heap_size;
  const t1 = performance.now();
  await new Promise((r) => setTimeout(r, 20));
  obs.disconnect();
  return { minorGcs: starts.filter((s) => s >= t0 && s <= t1).length, heapGrowth: h1 - h0 };
}

function hotLoop(link: Link, iters: number, sendEvery: number): void {
  const b = new Burst(64);
  for (let i = 0; i < iters; i++) {
    link.alloc(b, 64);
    if (i % sendEvery === 0) {
      for (let j = 0; j < b.count; j++) {
        const off = b.off(j);
        link.mem.set(NOBODY, off);
        link.mem.set(link.mac, off + 6);
        link.mem[off + 12] = 0x88; link.mem[off + 13] = 0xb5;   // local experimental ethertype
        b.setLen(j, 60);
      }
      link.send(b);
    } else {
      link.free(b);
    }
    link.recv(b);
    link.free(b);
  }
}

describe.skipIf(skip !== null)(`hot-path allocations on the real links${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  beforeAll(() => { lab = privateLab('al'); lab.up(); });
  afterAll(() => { lab?.down(); });

  for (const kind of ['afxdp', 'tap'] as const) {
    it(`${kind}: alloc/send/free/recv bursts allocate nothing per call`, async () => {
      const link: Link = kind === 'afxdp'
        ? AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, frameCount: 1024 })
        : TapLink.open({ name: lab.tapIface, netns: lab.serverNs, frameCount: 1024 });
      try {
        hotLoop(link, 20_000, 16);                 // warm-up: let the JIT settle
        const iters = 200_000;
        const w = await gcWindow(() => hotLoop(link, iters, 16));
        const s = link.stats();
        expect(s.txPackets).toBeGreaterThan(0);    // the loop really sent
        expect(w.minorGcs).toBe(0);
        // 16 bytes per call would be > 12 MB here; allow JIT/IC noise only.
        expect(w.heapGrowth).toBeLessThan(1 << 20);
      } finally {
        link.close();
      }
    });
  }
});
