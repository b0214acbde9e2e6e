// One AF_XDP socket per (interface, queue): on a two-queue veth, the XDP
// program redirects each frame to the socket of the queue it arrived on, so
// flows spread over both sockets and every datagram arrives exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { nodeIn } from './helpers/netproc.js';
import { readUdp4 } from './helpers/frames.js';
import { probeTransports } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { Burst } from '../src/link/types.js';
import { XdpProgram } from '../src/xdp/program.js';
import { run } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason!);

describe.skipIf(skip !== null)(`AF_XDP on two queues${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let prog: XdpProgram;
  let links: AfXdpLink[] = [];

  beforeAll(() => {
    lab = privateLab('mq', 2);
    lab.up();
    prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir });
    prog.steer({ addr: lab.afxdpAddr, proto: 'udp', portLo: 9000 });
    links = [0, 1].map((queue) => AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, queue, xdp: prog, frameCount: 512 }));
    const mac = [...links[0]!.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
    run(lab.client(['ip', 'neigh', 'replace', lab.afxdpAddr, 'lladdr', mac, 'dev', lab.clientIface]));
  });

  afterAll(() => {
    for (const l of links) l.close();
    prog?.detach();
    lab?.down();
  });

  it('delivers each flow to the socket of its queue, every datagram once', async () => {
    // 64 flows (one source port each), so the client's transmit-queue hash
    // spreads them over both queues.
    const flows = 64;
    const sender = nodeIn(lab.clientNs, `
      const dgram = require('node:dgram');
      let done = 0;
      for (let i = 0; i < ${flows}; i++) {
        const s = dgram.createSocket('udp4');
        s.bind(0, '${lab.clientAddr}', () => {
          const b = Buffer.alloc(16); b.writeUInt32BE(i, 0);
          s.send(b, 9000, '${lab.afxdpAddr}', () => { s.close(); if (++done === ${flows}) { console.log(JSON.stringify({ done })); } });
        });
      }
    `);
    const perQueue = [new Set<number>(), new Set<number>()];
    const b = new Burst(64);
    const total = () => perQueue[0]!.size + perQueue[1]!.size;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`only ${total()}/${flows} arrived`)), 10_000);
      links.forEach((l, q) => l.setReadyHandler(() => {
        while (l.recv(b) > 0) {
          for (let i = 0; i < b.count; i++) {
            const u = readUdp4(l.mem, b.off(i), b.len(i));
            if (u?.dport === 9000) perQueue[q]!.add(u.seq);
          }
          l.free(b);
        }
        if (total() >= flows) { clearTimeout(t); resolve(); }
      }));
    });
    for (const l of links) l.setReadyHandler(null);
    await sender.done;
    const all = new Set([...perQueue[0]!, ...perQueue[1]!]);
    expect(all.size).toBe(flows);
    expect(total()).toBe(flows);               // no datagram on both sockets
    expect(perQueue[0]!.size).toBeGreaterThan(0);
    expect(perQueue[1]!.size).toBeGreaterThan(0);
    expect(links.map((l) => l.info.queue)).toEqual([0, 1]);
    expect(prog.counters().no_socket.packets).toBe(0);
  });
});
