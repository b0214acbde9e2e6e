// AF_XDP steering against the real kernel as peer: traffic to the dataplane's
// address (10.200.0.3) reaches the AF_XDP socket, traffic to the kernel's
// address (10.200.0.2) still reaches the kernel, and the deny map drops.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { EchoResponder } from './helpers/echo-responder.js';
import { probeTransports } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { XdpProgram } from '../src/xdp/program.js';
import { run, tryRun } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason!);

describe.skipIf(skip !== null)(`AF_XDP steering${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let prog: XdpProgram;
  let link: AfXdpLink;
  let responder: EchoResponder;

  beforeAll(() => {
    lab = privateLab('st');
    lab.up();
    // The client's UDP checksums must be complete on the wire (no offload), so
    // echoed datagrams verify at the client.
    run(lab.client(['ethtool', '-K', 'c0', 'tx', 'off']));
    prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, mode: 'auto' });
    prog.steer({ addr: lab.afxdpAddr });
    link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, queue: 0, xdp: prog, frameCount: 1024 });
    responder = new EchoResponder(link, [lab.afxdpAddr]);
    responder.start();
  });

  afterAll(() => {
    responder?.stop();
    link?.close();
    prog?.detach();
    lab?.down();
  });

  const ping = (addr: string, count = 3) => new Promise<{ status: number | null; out: string }>((resolve) => {
    // Async: the responder runs on this event loop, so a sync spawn would starve it.
    const c = spawn('nsenter', [`--net=/run/netns/${lab.clientNs}`, '--', 'ping', '-c', String(count), '-i', '0.2', '-W', '2', addr]);
    let out = '';
    c.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    c.on('exit', (status) => resolve({ status, out }));
  });

  it('answers ARP and ping for the dataplane address through the AF_XDP socket', async () => {
    const before = prog.counters();
    const r = await ping(lab.afxdpAddr);
    expect(r.out).toContain('3 received');
    expect(r.status).toBe(0);
    expect(responder.counts.arp).toBeGreaterThanOrEqual(1);
    expect(responder.counts.icmp).toBe(3);
    const after = prog.counters();
    expect(after.arp_steered.packets - before.arp_steered.packets).toBeGreaterThanOrEqual(1);
    expect(after.redirected.packets - before.redirected.packets).toBe(3);
    expect(link.stats().rxPackets).toBeGreaterThanOrEqual(4);
    expect(link.stats().txPackets).toBeGreaterThanOrEqual(4);
    // The kernel never saw the dataplane's address: its neighbour entry on the
    // client names the server veth's MAC, learned from our ARP reply.
    const neigh = run(lab.client(['ip', 'neigh', 'show', lab.afxdpAddr]));
    const smac = /link\/ether ([0-9a-f:]{17})/.exec(run(['ip', '-n', lab.serverNs, 'link', 'show', lab.serverIface]))![1]!;
    expect(neigh).toContain(smac);
  });

  it('leaves the kernel address to the kernel: ping and TCP', async () => {
    const rxBefore = link.stats().rxPackets;
    const before = prog.counters();
    const r = await ping(lab.kernelAddr);
    expect(r.out).toContain('3 received');
    // A kernel TCP listener in the server namespace gets the client's bytes.
    const server = spawn('nsenter', [`--net=/run/netns/${lab.serverNs}`, '--', 'nc', '-l', '-s', lab.kernelAddr, '-p', '5001']);
    let got = '';
    server.stdout.on('data', (d: Buffer) => { got += d.toString(); });
    const exited = new Promise<void>((res) => server.on('exit', () => res()));
    for (let i = 0; i < 50; i++) {
      if (run(lab.server(['ss', '-ltn'])).includes(`${lab.kernelAddr}:5001`)) break;
      await new Promise((res) => setTimeout(res, 50));
    }
    const c = tryRun(lab.client(['sh', '-c', `printf 'hello over tcp' | nc -N -w 3 ${lab.kernelAddr} 5001`]));
    expect(c.status).toBe(0);
    await exited;
    expect(got).toBe('hello over tcp');
    expect(link.stats().rxPackets).toBe(rxBefore);
    const after = prog.counters();
    expect(after.pass_not_steered.packets - before.pass_not_steered.packets).toBeGreaterThanOrEqual(6);
    expect(after.redirected.packets).toBe(before.redirected.packets);
  });

  it('echoes UDP sent to the dataplane address', async () => {
    const out = await new Promise<string>((resolve) => {
      const c = spawn('nsenter', [`--net=/run/netns/${lab.clientNs}`, '--', 'sh', '-c', `printf 'ping-udp' | nc -u -w 1 ${lab.afxdpAddr} 7`]);
      let o = '';
      c.stdout.on('data', (d: Buffer) => { o += d.toString(); });
      c.on('exit', () => resolve(o));
    });
    expect(out).toBe('ping-udp');
    expect(responder.counts.udp).toBeGreaterThanOrEqual(1);
  });

  it('drops and counts denied sources, by prefix and by prefix + port', async () => {
    const udp = () => new Promise<string>((resolve) => {
      const c = spawn('nsenter', [`--net=/run/netns/${lab.clientNs}`, '--', 'sh', '-c', `printf 'x' | nc -u -w 1 ${lab.afxdpAddr} 7`]);
      let o = '';
      c.stdout.on('data', (d: Buffer) => { o += d.toString(); });
      c.on('exit', () => resolve(o));
    });
    const c0 = prog.counters().deny_drop.packets;
    prog.deny({ prefix: '10.200.0.0/24', dstPort: 7 });
    expect(await udp()).toBe('');
    const c1 = prog.counters().deny_drop.packets;
    expect(c1 - c0).toBeGreaterThanOrEqual(1);
    // Another port from the same source is not denied: ping still works.
    expect((await ping(lab.afxdpAddr, 1)).status).toBe(0);
    expect(prog.allow({ prefix: '10.200.0.0/24', dstPort: 7 })).toBe(true);
    expect(await udp()).toBe('x');

    // A whole-source deny also covers the kernel's own address.
    prog.deny({ prefix: '10.200.0.1/32' });
    expect(prog.denials()).toEqual([{ prefix: '10.200.0.1/32' }]);
    const r = await ping(lab.kernelAddr, 2);
    expect(r.status).not.toBe(0);
    const c2 = prog.counters().deny_drop.packets;
    expect(c2 - c1).toBeGreaterThanOrEqual(2);
    prog.allow({ prefix: '10.200.0.1/32' });
    expect((await ping(lab.kernelAddr, 1)).status).toBe(0);
  });

  it('passes steered traffic to the kernel when no socket is bound, and counts it', async () => {
    prog.unbindXsk(0);
    const before = prog.counters().no_socket.packets;
    const r = await ping(lab.afxdpAddr, 1);
    expect(r.status).not.toBe(0);   // the kernel does not own .3
    expect(prog.counters().no_socket.packets - before).toBeGreaterThanOrEqual(1);
    prog.bindXsk(0, link.fd);
    expect((await ping(lab.afxdpAddr, 1)).status).toBe(0);
  });
});
