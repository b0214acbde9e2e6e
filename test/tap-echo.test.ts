// TapLink in the lab's real topology: the client pings and sends UDP to the
// TAP dataplane address (10.201.0.2), routed by the server namespace's
// kernel over tap0; the responder on the TapLink answers ARP, ICMP and UDP.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { EchoResponder } from './helpers/echo-responder.js';
import { probeTransports } from '../src/link/native.js';
import { TapLink } from '../src/link/tap.js';
import { run } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().tap.available ? null : probeTransports().tap.reason!);

const inClient = (lab: Lab, argv: string[]) => new Promise<{ status: number | null; out: string }>((resolve) => {
  const c = spawn('nsenter', [`--net=/run/netns/${lab.clientNs}`, '--', ...argv]);
  let out = '';
  c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  c.on('exit', (status) => resolve({ status, out }));
});

describe.skipIf(skip !== null)(`TapLink echo through the lab${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let link: TapLink;
  let r: EchoResponder;

  beforeAll(() => {
    lab = privateLab('te');
    lab.up();
    run(lab.client(['ethtool', '-K', 'c0', 'tx', 'off']));
    link = TapLink.open({ name: lab.tapIface, netns: lab.serverNs });
    r = new EchoResponder(link, [lab.tapAddr]);
    r.start();
  });

  afterAll(() => {
    r?.stop();
    link?.close();
    lab?.down();
  });

  it('answers ARP from the server kernel and ping from the client, one hop away', async () => {
    const p = await inClient(lab, ['ping', '-c', '3', '-i', '0.2', '-W', '2', lab.tapAddr]);
    expect(p.out).toContain('3 received');
    expect(r.counts.arp).toBeGreaterThanOrEqual(1);
    expect(r.counts.icmp).toBe(3);
    // The server kernel resolved 10.201.0.2 to the dataplane's MAC, not its own.
    const mac = [...link.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
    expect(run(lab.server(['ip', 'neigh', 'show', lab.tapAddr]))).toContain(mac);
  });

  it('echoes UDP', async () => {
    const u = await inClient(lab, ['sh', '-c', `printf 'via-tap' | nc -u -w 1 ${lab.tapAddr} 7`]);
    expect(u.out).toBe('via-tap');
    expect(r.counts.udp).toBeGreaterThanOrEqual(1);
    const s = link.stats();
    expect(s.rxPackets).toBeGreaterThanOrEqual(5);
    expect(s.txPackets).toBeGreaterThanOrEqual(5);
    expect(s.txDropped).toBe(0);
  });
});
