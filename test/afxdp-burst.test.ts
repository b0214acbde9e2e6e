// Bursts of 1 and 64 in both directions on AfXdpLink, with the kernel of the
// client namespace as the peer: one send() of N frames arrives as N
// datagrams at a kernel socket; N datagrams from the kernel come out of one
// or more recv() calls, every one of them, in UMEM frames the caller owns.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { udpCounter, udpSender } from './helpers/netproc.js';
import { macBytes, readUdp4, writeUdp4 } from './helpers/frames.js';
import { probeTransports } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { Burst } from '../src/link/types.js';
import { XdpProgram } from '../src/xdp/program.js';
import { run } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason!);

function macOf(ns: string, iface: string): Uint8Array {
  return macBytes(/link\/ether ([0-9a-f:]{17})/.exec(run(['ip', '-n', ns, 'link', 'show', iface]))![1]!);
}

describe.skipIf(skip !== null)(`AfXdpLink bursts${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let prog: XdpProgram;
  let link: AfXdpLink;
  let clientMac: Uint8Array;

  beforeAll(() => {
    lab = privateLab('xb');
    lab.up();
    run(lab.client(['ethtool', '-K', 'c0', 'tx', 'off']));
    prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir });
    prog.steer({ addr: lab.afxdpAddr, proto: 'udp', portLo: 9000, portHi: 9001 });
    link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, xdp: prog, frameCount: 1024, frameSize: 2048 });
    clientMac = macOf(lab.clientNs, lab.clientIface);
    // No ARP responder here: the client learns the dataplane's MAC statically.
    const smac = [...link.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
    run(lab.client(['ip', 'neigh', 'replace', lab.afxdpAddr, 'lladdr', smac, 'dev', lab.clientIface]));
  });

  afterAll(() => {
    link?.close();
    prog?.detach();
    lab?.down();
  });

  for (const n of [1, 64]) {
    it(`sends a burst of ${n} in one call and the kernel receives all ${n}`, async () => {
      const port = 9100 + n;
      const rx = udpCounter(lab.clientNs, lab.clientAddr, port, n);
      await rx.ready;
      const b = new Burst(64);
      expect(link.alloc(b, n)).toBe(n);
      const payload = new Uint8Array(32);
      for (let i = 0; i < n; i++) {
        new DataView(payload.buffer).setUint32(0, i);
        const len = writeUdp4(link.mem, b.off(i), {
          srcMac: link.mac, dstMac: clientMac, src: lab.afxdpAddr, dst: lab.clientAddr, sport: 9000, dport: port, payload,
        });
        b.setLen(i, len);
      }
      const before = link.stats();
      expect(link.send(b)).toBe(n);
      expect(b.count).toBe(0);
      const got = JSON.parse(await rx.done) as { count: number; bytes: number };
      expect(got.count).toBe(n);
      expect(got.bytes).toBe(32 * n);
      const after = link.stats();
      expect(after.txPackets - before.txPackets).toBe(n);
      expect(after.txDropped).toBe(before.txDropped);
    });

    it(`receives a burst of ${n} sent by the kernel, all of them`, async () => {
      const tx = udpSender(lab.clientNs, lab.clientAddr, lab.afxdpAddr, 9000, n, 48);
      const b = new Burst(64);
      const seen = new Set<number>();
      let calls = 0;
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(() => { link.setReadyHandler(null); reject(new Error(`only ${seen.size}/${n} frames arrived`)); }, 10_000);
        link.setReadyHandler(() => {
          calls++;
          while (link.recv(b) > 0) {
            for (let i = 0; i < b.count; i++) {
              const u = readUdp4(link.mem, b.off(i), b.len(i));
              expect(b.off(i) + b.len(i)).toBeLessThanOrEqual(link.mem.length);
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
      expect(link.xskStats().badDescs).toBe(0);
    });
  }

  it('catches a double free instead of corrupting the free-frame stack', () => {
    const b = new Burst(8);
    const free0 = link.xskStats().freeFrames;
    const bad0 = link.xskStats().badDescs;
    expect(link.alloc(b, 4)).toBe(4);
    const copy = b.desc.slice(0, 8);
    link.free(b);
    expect(link.xskStats().freeFrames).toBe(free0);
    b.desc.set(copy); b.count = 4;
    link.free(b);                       // the same four frames again
    expect(link.xskStats().freeFrames).toBe(free0);
    expect(link.xskStats().badDescs - bad0).toBe(4);
  });
});
