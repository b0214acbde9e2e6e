// The Link contract's drop rule on AF_XDP: send() takes ownership of every
// frame; what the TX ring cannot queue is dropped, counted in txDropped and
// returned to the free-frame stack (the caller never gets it back), and the
// kernel receives exactly the frames that were queued.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { udpCounter } from './helpers/netproc.js';
import { macBytes, writeUdp4 } from './helpers/frames.js';
import { probeTransports } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { Burst } from '../src/link/types.js';
import { run } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason!);

describe.skipIf(skip !== null)(`AfXdpLink TX ring full${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let link: AfXdpLink;

  beforeAll(() => {
    lab = privateLab('tf');
    lab.up();
    run(lab.client(['ethtool', '-K', 'c0', 'tx', 'off']));
    // No XDP program needed to transmit; a 64-slot TX ring.
    link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, frameCount: 1024, frameSize: 2048, txSize: 64, compSize: 64 });
  });

  afterAll(() => {
    link?.close();
    lab?.down();
  });

  it('queues what fits in one send() of 256, drops and counts the rest, and recovers every frame', async () => {
    const n = 256;
    const rx = udpCounter(lab.clientNs, lab.clientAddr, 9300, 64, 1500);
    await rx.ready;
    const clientMac = macBytes(/link\/ether ([0-9a-f:]{17})/.exec(run(['ip', '-n', lab.clientNs, 'link', 'show', lab.clientIface]))![1]!);
    const b = new Burst(n);
    const free0 = link.xskStats().freeFrames + link.xskStats().txOutstanding;
    expect(link.alloc(b, n)).toBe(n);
    const payload = new Uint8Array(16);
    for (let i = 0; i < n; i++) {
      b.setLen(i, writeUdp4(link.mem, b.off(i), {
        srcMac: link.mac, dstMac: clientMac, src: lab.afxdpAddr, dst: lab.clientAddr, sport: 9000, dport: 9300, payload,
      }));
    }
    const queued = link.send(b);
    expect(queued).toBe(64);
    expect(b.count).toBe(0);
    const s = link.xskStats();
    expect(s.txDropped).toBe(n - 64);
    expect(s.txRingFull).toBeGreaterThanOrEqual(1);
    expect(link.stats().txDropped).toBe(n - 64);
    const got = JSON.parse(await rx.done) as { count: number };
    expect(got.count).toBe(64);
    // Completed frames come back through the completion ring on the next call.
    const probe = new Burst(1);
    link.alloc(probe, 1);
    link.free(probe);
    const s2 = link.xskStats();
    expect(s2.txOutstanding).toBe(0);
    expect(s2.freeFrames).toBe(free0);
    expect(s2.badDescs).toBe(0);
  });
});
