// Bursts of 1 and 64 in both directions on TapLink, with the server
// namespace's kernel (tap0, 10.201.0.1) as the peer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { udpCounter, udpSender } from './helpers/netproc.js';
import { readUdp4, writeUdp4 } from './helpers/frames.js';
import { probeTransports } from '../src/link/native.js';
import { TapLink } from '../src/link/tap.js';
import { Burst } from '../src/link/types.js';
import { run } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().tap.available ? null : probeTransports().tap.reason!);

describe.skipIf(skip !== null)(`TapLink bursts${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let link: TapLink;

  beforeAll(() => {
    lab = privateLab('tb');
    lab.up();
    link = TapLink.open({ name: lab.tapIface, netns: lab.serverNs, frameCount: 512 });
    const mac = [...link.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
    run(lab.server(['ip', 'neigh', 'replace', lab.tapAddr, 'lladdr', mac, 'dev', lab.tapIface]));
  });

  afterAll(() => {
    link?.close();
    lab?.down();
  });

  it('reports the device: MTU, the kernel side MAC and a distinct dataplane MAC', () => {
    expect(link.mtu).toBe(1514);
    expect(link.kernelMac.length).toBe(6);
    const kmac = /link\/ether ([0-9a-f:]{17})/.exec(run(['ip', '-n', lab.serverNs, 'link', 'show', lab.tapIface]))![1]!;
    expect([...link.kernelMac].map((b) => b.toString(16).padStart(2, '0')).join(':')).toBe(kmac);
    expect([...link.mac]).not.toEqual([...link.kernelMac]);
    expect(link.mac[0]! & 0x01).toBe(0);   // unicast
  });

  for (const n of [1, 64]) {
    it(`sends a burst of ${n} in one call and the kernel receives all ${n}`, async () => {
      const port = 9200 + n;
      const rx = udpCounter(lab.serverNs, lab.tapKernelAddr, port, n);
      await rx.ready;
      const b = new Burst(64);
      expect(link.alloc(b, n)).toBe(n);
      const payload = new Uint8Array(40);
      for (let i = 0; i < n; i++) {
        new DataView(payload.buffer).setUint32(0, i);
        b.setLen(i, writeUdp4(link.mem, b.off(i), {
          srcMac: link.mac, dstMac: link.kernelMac, src: lab.tapAddr, dst: lab.tapKernelAddr, sport: 9000, dport: port, payload,
        }));
      }
      const free0 = link.tapStats().freeFrames;
      expect(link.send(b)).toBe(n);
      expect(b.count).toBe(0);
      expect(link.tapStats().freeFrames).toBe(free0 + n);   // written: back in the pool
      const got = JSON.parse(await rx.done) as { count: number; bytes: number };
      expect(got).toEqual({ count: n, bytes: 40 * n });
    });

    it(`receives a burst of ${n} sent by the kernel, all of them`, async () => {
      const tx = udpSender(lab.serverNs, lab.tapKernelAddr, lab.tapAddr, 9000, n, 48);
      const b = new Burst(64);
      const seen = new Set<number>();
      let calls = 0;
      const free0 = link.tapStats().freeFrames;
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => { link.setReadyHandler(null); reject(new Error(`only ${seen.size}/${n} frames arrived`)); }, 10_000);
        link.setReadyHandler(() => {
          calls++;
          while (link.recv(b) > 0) {
            for (let i = 0; i < b.count; i++) {
              const u = readUdp4(link.mem, b.off(i), b.len(i));
              if (u && u.dport === 9000) seen.add(u.seq);
            }
            link.free(b);
          }
          if (seen.size >= n) { clearTimeout(t); link.setReadyHandler(null); resolve(); }
        });
      });
      await tx.done;
      expect([...seen].sort((a, c) => a - c)).toEqual(Array.from({ length: n }, (_, i) => i));
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(link.tapStats().freeFrames).toBe(free0);
      expect(link.tapStats().badFrees).toBe(0);
    });
  }

  it('refuses to free a frame twice (counted, pool intact)', () => {
    const b = new Burst(4);
    const free0 = link.tapStats().freeFrames;
    link.alloc(b, 2);
    const copy = b.desc.slice(0, 4);
    link.free(b);
    b.desc.set(copy); b.count = 2;
    link.free(b);
    expect(link.tapStats().freeFrames).toBe(free0);
    expect(link.tapStats().badFrees).toBe(2);
  });
});
