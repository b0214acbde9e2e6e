// The stack against the real Linux kernel, over TapLink and over AfXdpLink,
// each in a private lab: the client namespace pings the stack, talks UDP to
// it with node:dgram, gets ECONNREFUSED from a closed port (our ICMP port
// unreachable), and a 4000-byte ping is fragmented by the kernel,
// reassembled by the stack and answered in fragments.
//   TAP:    10.201.0.2/24 on tap0; the server namespace's kernel routes
//           between the client and tap0, so the stack resolves its gateway
//           (10.201.0.1) through ARP.
//   AF_XDP: 10.200.0.3/24 on the veth s0, steered to the socket by the XDP
//           program; the client is on-link.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { nodeIn } from './helpers/netproc.js';
import { probeTransports } from '../src/link/native.js';
import { TapLink } from '../src/link/tap.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { XdpProgram } from '../src/xdp/program.js';
import { run } from '../src/util/run.js';
import type { Link } from '../src/link/types.js';
import { Stack, runStack, type StackDriver } from '../src/stack/iface.js';
import { ip4FromString } from '../src/stack/registration.js';
import { NUD } from '../src/stack/arp.js';
import type { Lab } from '../src/lab/topo.js';

const exec = promisify(execFile);
for (const kind of ['tap', 'afxdp'] as const) {
const skip = rootSkipReason() ?? (probeTransports()[kind].available ? null : probeTransports()[kind].reason!);

describe.skipIf(skip !== null)(`stack on ${kind} vs the kernel${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;
  let link: Link;
  let prog: XdpProgram | undefined;
  let stack: Stack;
  let driver: StackDriver;
  let addr: string;

  /** Runs argv in the client namespace without blocking the event loop the stack runs on. */
  const client = async (argv: string[]): Promise<{ stdout: string; code: number }> => {
    const full = lab.client(argv);
    try {
      const r = await exec(full[0]!, full.slice(1), { timeout: 30_000 });
      return { stdout: r.stdout, code: 0 };
    } catch (e) {
      const err = e as { stdout?: string; code?: number };
      return { stdout: err.stdout ?? '', code: typeof err.code === 'number' ? err.code : -1 };
    }
  };

  beforeAll(() => {
    lab = privateLab(`stk${kind[0]}`);
    lab.up();
    if (kind === 'tap') {
      addr = lab.tapAddr;
      link = TapLink.open({ name: lab.tapIface, netns: lab.serverNs, frameCount: 1024 });
      stack = new Stack({ link, addrs: [{ addr, prefixLen: 24 }], gateway: lab.tapKernelAddr });
    } else {
      addr = lab.afxdpAddr;
      // veth leaves UDP checksums to "offload" (CHECKSUM_PARTIAL); AF_XDP in
      // copy mode hands us the unfinished checksum, so the client computes it.
      run(lab.client(['ethtool', '-K', lab.clientIface, 'tx', 'off']));
      prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, mode: 'auto' });
      prog.steer({ addr });
      link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, queue: 0, xdp: prog, frameCount: 1024 });
      stack = new Stack({ link, addrs: [{ addr, prefixLen: 24 }] });
    }
    driver = runStack(stack);
    // A UDP echo service on the stack.
    const echo = stack.createUdpSocket();
    echo.bind(7000);
    echo.on('message', (m: Buffer, r) => echo.send(m, r.port, r.address));
  });

  afterAll(() => {
    driver?.stop();
    stack?.close();
    link?.close();
    prog?.detach();
    lab?.down();
  });

  it('answers ping from the client namespace', async () => {
    const r = await client(['ping', '-c', '3', '-i', '0.2', '-W', '2', addr]);
    expect(r.stdout).toMatch(/3 packets transmitted, 3 received/);
    expect(r.code).toBe(0);
    expect(stack.stats.icmpEchoRequests).toBeGreaterThanOrEqual(3);
    // The stack answered the kernel's ARP and resolved its next hop (the gateway, or the on-link client).
    const hop = kind === 'tap' ? lab.tapKernelAddr : lab.clientAddr;
    expect(stack.arp.lookup(ip4FromString(hop))?.state).toBeGreaterThanOrEqual(NUD.REACHABLE);
  });

  it('exchanges UDP with a node:dgram client', async () => {
    const peer = nodeIn(lab.clientNs, `
      const s = require('node:dgram').createSocket('udp4');
      const got = [];
      s.on('message', (m, r) => { got.push([m.toString(), r.address, r.port]); if (got.length === 3) { console.log(JSON.stringify(got)); process.exit(0); } });
      s.bind(0, () => { for (const m of ['alpha', 'beta', 'x'.repeat(1400)]) s.send(m, 7000, '${addr}'); });
      setTimeout(() => { console.log(JSON.stringify(got)); process.exit(1); }, 10000);
    `);
    const got = JSON.parse(await peer.done) as [string, string, number][];
    expect(got.map((g) => g[0]).sort()).toEqual(['alpha', 'beta', 'x'.repeat(1400)].sort());
    for (const g of got) expect([g[1], g[2]]).toEqual([addr, 7000]);
  });

  it('a large UDP datagram crosses fragmented both ways', async () => {
    const peer = nodeIn(lab.clientNs, `
      const s = require('node:dgram').createSocket('udp4');
      const big = Buffer.alloc(9000); for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 255;
      s.on('message', (m) => { console.log(JSON.stringify({ len: m.length, same: m.equals(big) })); process.exit(0); });
      s.bind(0, () => s.send(big, 7000, '${addr}'));
      setTimeout(() => process.exit(1), 10000);
    `);
    expect(JSON.parse(await peer.done)).toEqual({ len: 9000, same: true });
    expect(stack.stats.reassembled).toBeGreaterThanOrEqual(1);
    expect(stack.stats.fragmentedPackets).toBeGreaterThanOrEqual(1);
  });

  it('UDP to a closed port: the kernel client sees ECONNREFUSED', async () => {
    const before = stack.stats.dropsOf('UDP_NO_SOCKET');
    const peer = nodeIn(lab.clientNs, `
      const s = require('node:dgram').createSocket('udp4');
      s.on('error', (e) => { console.log(e.code); process.exit(0); });
      s.connect(7001, '${addr}', () => { s.send('anyone?'); setTimeout(() => s.send('anyone?'), 300); });
      setTimeout(() => { console.log('no error'); process.exit(0); }, 5000);
    `);
    expect(await peer.done).toBe('ECONNREFUSED');
    expect(stack.stats.dropsOf('UDP_NO_SOCKET')).toBeGreaterThan(before);
    expect(stack.stats.icmpErrorsSent).toBeGreaterThanOrEqual(1);
  });

  it('a 4000-byte ping is reassembled and answered in fragments', async () => {
    const reasm0 = stack.stats.reassembled;
    const frag0 = stack.stats.fragmentedPackets;
    const r = await client(['ping', '-c', '2', '-i', '0.2', '-W', '2', '-s', '4000', addr]);
    expect(r.stdout).toMatch(/2 packets transmitted, 2 received/);
    expect(r.stdout).toMatch(/4008 bytes from/);
    expect(stack.stats.reassembled - reasm0).toBe(2);
    expect(stack.stats.fragmentedPackets - frag0).toBe(2);
  });

  it('nothing was dropped for a bad reason', () => {
    const d = stack.stats.snapshot().drops;
    for (const k of ['IP_BAD_CHECKSUM', 'IP_BAD_LENGTH', 'UDP_BAD_CHECKSUM', 'ICMP_BAD_CHECKSUM', 'ARP_FAILED', 'ARP_QUEUE_FULL', 'FRAG_OVERLAP', 'REASM_MEMORY_FULL', 'NO_FRAME', 'TX_RING_FULL'] as const) {
      expect([k, d[k]]).toEqual([k, 0]);
    }
  });
});
}
