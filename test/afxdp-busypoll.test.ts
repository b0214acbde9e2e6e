// Opt-in busy polling: the socket asks the kernel for SO_PREFER_BUSY_POLL /
// SO_BUSY_POLL / SO_BUSY_POLL_BUDGET and the caller spins on recv() instead
// of waiting for readiness; every datagram the kernel sends still arrives.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { udpSender } from './helpers/netproc.js';
import { readUdp4 } from './helpers/frames.js';
import { probeTransports } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { Burst } from '../src/link/types.js';
import { XdpProgram } from '../src/xdp/program.js';
import { run } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason!);

describe.skipIf(skip !== null)(`AfXdpLink busy polling${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let prog: XdpProgram;
  let link: AfXdpLink;

  beforeAll(() => {
    lab = privateLab('bp');
    lab.up();
    prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir });
    prog.steer({ addr: lab.afxdpAddr, proto: 'udp', portLo: 9000 });
    link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, xdp: prog, frameCount: 512, busyPoll: { usec: 20, budget: 64 } });
    const mac = [...link.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
    run(lab.client(['ip', 'neigh', 'replace', lab.afxdpAddr, 'lladdr', mac, 'dev', lab.clientIface]));
  });

  afterAll(() => {
    link?.close();
    prog?.detach();
    lab?.down();
  });

  it('sets the busy-poll socket options', () => {
    expect(link.info.busyPoll).toBe(true);
    // root may set all three on this kernel; report rather than assume elsewhere.
    expect(link.info.busyPollPrefer && link.info.busyPollUsec && link.info.busyPollBudget).toBe(true);
  });

  it('receives 64 datagrams by spinning on recv()', async () => {
    const tx = udpSender(lab.clientNs, lab.clientAddr, lab.afxdpAddr, 9000, 64, 32);
    const b = new Burst(64);
    const seen = new Set<number>();
    // Spin, yielding to the event loop between bursts so the sender's exit is seen.
    for (let spins = 0; seen.size < 64 && spins < 200_000; spins++) {
      if (link.recv(b) > 0) {
        for (let i = 0; i < b.count; i++) {
          const u = readUdp4(link.mem, b.off(i), b.len(i));
          if (u?.dport === 9000) seen.add(u.seq);
        }
        link.free(b);
      } else await new Promise((r) => setImmediate(r));
    }
    await tx.done;
    expect(seen.size).toBe(64);
    expect(link.xskStats().rxWakeups).toBeGreaterThan(0);   // recvfrom() drove the busy poll
  });
});
