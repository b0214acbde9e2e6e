// Attach modes and the parser's reach: native with a reported fallback to
// generic where the driver has no XDP (the namespace's loopback), forced generic mode
// carrying AF_XDP traffic, and IPv6 steering including neighbour discovery.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { EchoResponder } from './helpers/echo-responder.js';
import { probeTransports } from '../src/link/native.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { Burst } from '../src/link/types.js';
import { XdpProgram } from '../src/xdp/program.js';
import { PROG_NAME } from '../src/xdp/shared.js';
import { SystemError } from '../src/util/errors.js';
import { run } from '../src/util/run.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason() ?? (probeTransports().afxdp.available ? null : probeTransports().afxdp.reason!);

// Loopback has no driver XDP hook (no ndo_bpf): native attach must fail there.
const NOXDP = 'lo';

const inClient = (lab: Lab, argv: string[]) => new Promise<number | null>((res) => {
  spawn('nsenter', [`--net=/run/netns/${lab.clientNs}`, '--', ...argv]).on('exit', res);
});

describe.skipIf(skip !== null)(`XDP attach modes${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let lab: Lab;

  beforeAll(() => {
    lab = privateLab('md');
    lab.up();
  });
  afterAll(() => { lab?.down(); });

  it("falls back to generic mode under 'auto' and says why", () => {
    const pinDir = `${lab.pinDir.replace(/_s0$/, '')}_lo`;
    const p = XdpProgram.attach({ iface: NOXDP, netns: lab.serverNs, pinDir, mode: 'auto' });
    try {
      expect(p.mode).toBe('generic');
      expect(p.fallbackReason).toMatch(/native/);
      const q = XdpProgram.query({ iface: NOXDP, netns: lab.serverNs });
      expect(q.mode).toBe('skb');
      expect(q.programs.map((x) => x.name)).toEqual([PROG_NAME]);
    } finally {
      p.detach();
    }
    expect(XdpProgram.query({ iface: NOXDP, netns: lab.serverNs }).programs).toEqual([]);
  });

  it("refuses 'native' where the driver cannot, with a SystemError and no leftovers", () => {
    const pinDir = `${lab.pinDir.replace(/_s0$/, '')}_lo`;
    let err: unknown;
    try { XdpProgram.attach({ iface: NOXDP, netns: lab.serverNs, pinDir, mode: 'native' }); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(SystemError);
    expect((err as SystemError).code).toBe('ERR_STRATA_SYSCALL');
    expect(XdpProgram.query({ iface: NOXDP, netns: lab.serverNs }).programs).toEqual([]);
  });

  it('attaches while the process is showered with signals (the verifier gives up on a pending signal)', async () => {
    // V8's sampling profiler (node --cpu-prof) sends SIGPROF every
    // millisecond; the verifier answers EAGAIN whenever a signal is pending
    // and libbpf retries only a few times. A shell loop sending SIGUSR2 as
    // fast as it can stands in for it.
    const noop = (): void => {};
    process.on('SIGUSR2', noop);
    const storm = spawn('sh', ['-c', `while kill -USR2 ${process.pid} 2>/dev/null; do :; done`], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 100)); // the storm is running
      for (let i = 0; i < 3; i++) {
        const p = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, mode: 'auto' });
        try {
          expect(p.mode).toBe('native');
        } finally {
          p.detach();
        }
      }
      expect(storm.exitCode).toBeNull(); // it was still sending when the last attach finished
    } finally {
      storm.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 50));
      process.off('SIGUSR2', noop);
    }
    expect(XdpProgram.query({ iface: lab.serverIface, netns: lab.serverNs }).programs).toEqual([]);
  });

  it('carries AF_XDP traffic in forced generic mode', async () => {
    const p = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, mode: 'generic' });
    const link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, xdp: p, frameCount: 256, mode: 'copy' });
    const r = new EchoResponder(link, [lab.afxdpAddr]);
    try {
      expect(p.mode).toBe('generic');
      expect(p.fallbackReason).toBeUndefined();
      p.steer({ addr: lab.afxdpAddr });
      r.start();
      expect(await inClient(lab, ['ping', '-c', '2', '-i', '0.2', '-W', '2', lab.afxdpAddr])).toBe(0);
      expect(r.counts.icmp).toBe(2);
      expect(p.counters().redirected.packets).toBe(2);
      expect(link.info.zerocopy).toBe(false);
    } finally {
      r.stop();
      link.close();
      p.detach();
    }
  });

  it('steers IPv6: neighbour solicitations for the address and UDP to a port range', async () => {
    run(lab.client(['ip', 'addr', 'add', 'fd00:200::1/64', 'dev', lab.clientIface, 'nodad']));
    const p = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir });
    const link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, xdp: p, frameCount: 256 });
    try {
      p.steer({ addr: 'fd00:200::3', proto: 'udp', portLo: 7000, portHi: 7010 });
      expect(p.steering()).toEqual([{ addr: 'fd00:200::3', proto: 'udp', portLo: 7000, portHi: 7010 }]);
      // The client's kernel solicits fd00:200::3 before sending: that NS is ours.
      await inClient(lab, ['sh', '-c', "printf x | nc -u -w 1 fd00:200::3 7005"]);
      const c = p.counters();
      expect(c.ndp_steered.packets).toBeGreaterThanOrEqual(1);
      const b = new Burst(64);
      let ns = 0;
      while (link.recv(b) > 0) {
        for (let i = 0; i < b.count; i++) {
          const f = link.mem.subarray(b.off(i), b.off(i) + b.len(i));
          // IPv6, ICMPv6, type 135 (neighbour solicitation)
          if (f[12] === 0x86 && f[13] === 0xdd && f[20] === 58 && f[54] === 135) ns++;
        }
        link.free(b);
      }
      expect(ns).toBeGreaterThanOrEqual(1);

      // With the neighbour known, UDP in the range is redirected, outside it is not.
      const mac = [...link.mac].map((x) => x.toString(16).padStart(2, '0')).join(':');
      run(lab.client(['ip', 'neigh', 'replace', 'fd00:200::3', 'lladdr', mac, 'dev', lab.clientIface]));
      const before = p.counters();
      await inClient(lab, ['sh', '-c', "printf x | nc -u -w 1 fd00:200::3 7010"]);
      await inClient(lab, ['sh', '-c', "printf x | nc -u -w 1 fd00:200::3 7011"]);
      const after = p.counters();
      expect(after.redirected.packets - before.redirected.packets).toBe(1);
      expect(after.pass_not_steered.packets - before.pass_not_steered.packets).toBeGreaterThanOrEqual(1);
    } finally {
      link.close();
      p.detach();
    }
  });
});
