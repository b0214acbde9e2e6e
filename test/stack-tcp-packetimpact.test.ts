// Crafted-packet tests in the style of gVisor's packetimpact: a raw socket in
// the client namespace (src/stack/tcp/tools/tcpcraft.c, built here with clang)
// sends exact segments across the lab to the stack on TAP and AF_XDP, and the
// test asserts the stack's exact answers. The client kernel's own RSTs for
// these ports are dropped with iptables so only the test speaks for them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { probeTransports } from '../src/link/native.js';
import { TapLink } from '../src/link/tap.js';
import { AfXdpLink } from '../src/link/afxdp.js';
import { XdpProgram } from '../src/xdp/program.js';
import { inNetns, run } from '../src/util/run.js';
import type { Link } from '../src/link/types.js';
import { Stack, runStack, type StackDriver } from '../src/stack/iface.js';
import { ip4FromString } from '../src/stack/registration.js';
import { Tcp } from '../src/stack/tcp/tcp.js';
import type { TcpConnection } from '../src/stack/tcp/connection.js';
import { buildSegment, parseSegment, type SegmentSpec, type SegmentView } from '../src/stack/tcp/testing.js';
import { FLAG } from '../src/stack/wire/tcp.js';
import type { Lab } from '../src/lab/topo.js';

const { SYN, ACK, RST, FIN, PSH } = FLAG;
const SRC = new URL('../src/stack/tcp/tools/tcpcraft.c', import.meta.url).pathname;

/** The peer: a raw socket in the client namespace, driven over stdin/stdout. */
class RawPeer {
  private lines: string[] = [];
  private wake: (() => void) | null = null;
  private buf = '';
  seq = 5000;
  ack = 0;
  tsVal = 1000;
  tsEcr = 0;
  constructor(private readonly child: ChildProcess, readonly src: number, readonly dst: number, readonly sport: number, public dport: number) {
    child.stdout!.on('data', (d: Buffer) => {
      this.buf += d.toString();
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const l = this.buf.slice(0, i).trim();
        this.buf = this.buf.slice(i + 1);
        if (l === 'ready' || l === '') continue;
        this.lines.push(l);
        this.wake?.();
      }
    });
  }

  static async start(bin: string, lab: Lab, stackAddr: string, sport: number, dport: number): Promise<RawPeer> {
    const argv = inNetns(lab.clientNs, [bin, stackAddr, String(sport)]);
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => {
      const on = (d: Buffer): void => { if (d.toString().includes('ready')) { child.stdout!.off('data', on); resolve(); } };
      child.stdout!.on('data', on);
    });
    return new RawPeer(child, ip4FromString(lab.clientAddr), ip4FromString(stackAddr), sport, dport);
  }

  send(s: Partial<SegmentSpec> & { flags: number }): void {
    const seg = buildSegment({ src: this.src, dst: this.dst, sport: this.sport, dport: this.dport, seq: this.seq, ack: this.ack, wnd: 65535, ts: [this.tsVal, this.tsEcr], ...s });
    this.child.stdin!.write(Buffer.from(seg).toString('hex') + '\n');
  }

  async recv(timeoutMs = 3000): Promise<SegmentView> {
    const end = Date.now() + timeoutMs;
    while (this.lines.length === 0) {
      const left = end - Date.now();
      if (left <= 0) throw new Error('no segment from the stack');
      await new Promise<void>((r) => { this.wake = r; setTimeout(r, left); });
      this.wake = null;
    }
    const v = parseSegment(this.dst, this.src, Buffer.from(this.lines.shift()!, 'hex'));
    if (v.ts) this.tsEcr = v.ts[0];
    return v;
  }

  async recvNothing(ms = 300): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    expect(this.lines.map((l) => parseSegment(this.dst, this.src, Buffer.from(l, 'hex')).f)).toEqual([]);
  }

  /** Three-way handshake; returns the SYN-ACK. */
  async handshake(): Promise<SegmentView> {
    this.send({ flags: SYN, mss: 1460, wscale: 7, sackPermitted: true, ts: [this.tsVal, 0] });
    const sa = await this.recv();
    expect(sa.f).toBe('S.');
    this.seq++;
    this.ack = sa.seq + 1;
    this.tsVal++;
    this.send({ flags: ACK });
    return sa;
  }

  close(): void { this.child.stdin!.end(); this.child.kill(); }
}

for (const kind of ['tap', 'afxdp'] as const) {
  const skip = rootSkipReason() ?? (probeTransports()[kind].available ? null : probeTransports()[kind].reason!);

  describe.skipIf(skip !== null)(`packetimpact: TCP on ${kind}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let lab: Lab;
    let link: Link;
    let prog: XdpProgram | undefined;
    let stack: Stack;
    let driver: StackDriver;
    let tcp: Tcp;
    let addr: string;
    let dir: string;
    let bin: string;
    let nextPort = 41000;
    const accepted: TcpConnection[] = [];
    const peers: RawPeer[] = [];

    const peer = async (dport: number): Promise<RawPeer> => {
      const sport = nextPort++;
      // Drop the client kernel's RSTs for this port, not ours (tcpcraft sends with TTL 123).
      run(lab.client(['iptables', '-A', 'OUTPUT', '-p', 'tcp', '--sport', String(sport), '--tcp-flags', 'RST', 'RST', '-m', 'ttl', '!', '--ttl-eq', '123', '-j', 'DROP']));
      const p = await RawPeer.start(bin, lab, addr, sport, dport);
      peers.push(p);
      return p;
    };

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'strata-tcpcraft-'));
      bin = join(dir, 'tcpcraft');
      execFileSync('clang', ['-O2', '-Wall', '-o', bin, SRC]);
      lab = privateLab(`pi${kind[0]}`);
      lab.up();
      if (kind === 'tap') {
        addr = lab.tapAddr;
        link = TapLink.open({ name: lab.tapIface, netns: lab.serverNs, frameCount: 1024 });
        stack = new Stack({ link, addrs: [{ addr, prefixLen: 24 }], gateway: lab.tapKernelAddr });
      } else {
        addr = lab.afxdpAddr;
        prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, mode: 'auto' });
        prog.steer({ addr });
        link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, queue: 0, xdp: prog, frameCount: 1024 });
        stack = new Stack({ link, addrs: [{ addr, prefixLen: 24 }] });
      }
      tcp = Tcp.attach(stack, { config: { recvBuffer: 256 * 1024, timeWaitMs: 60_000 } });
      driver = runStack(stack);
      // 7100: echo. 7101: the stack closes first (for TIME-WAIT). 7102: sends "hello" at once (zero-window test).
      const echo = tcp.listen(7100);
      echo.onAcceptable = () => { for (let c = echo.accept({ onData: (c, b, o, l) => c.write(b, o, l), onEnd: (c) => c.end() }); c; c = echo.accept()) accepted.push(c); };
      const closer = tcp.listen(7101);
      closer.onAcceptable = () => { for (let c = closer.accept({ onConnect: (c) => c.end() }); c; c = closer.accept()) { accepted.push(c); c.end(); } };
      const talker = tcp.listen(7102);
      talker.onAcceptable = () => { for (let c = talker.accept({}); c; c = talker.accept()) { accepted.push(c); c.setNoDelay(true); c.write(Buffer.from('hello')); } };
    });

    afterAll(() => {
      for (const p of peers) p.close();
      driver?.stop();
      stack?.close();
      link?.close();
      prog?.detach();
      lab?.down();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('the SYN-ACK carries MSS, window scale, SACK-permitted and the echoed timestamp', async () => {
      const p = await peer(7100);
      p.send({ flags: SYN, seq: 5000, mss: 1460, wscale: 7, sackPermitted: true, ts: [777, 0] });
      const sa = await p.recv();
      expect(sa.f).toBe('S.');
      expect(sa.ack).toBe(5001);
      expect(sa.mss).toBe(1460);
      expect(sa.wscale).toBe(3);
      expect(sa.sackPermitted).toBe(true);
      expect(sa.ts![1]).toBe(777);
    });

    it('a SYN to a closed port gets RST,ACK', async () => {
      const p = await peer(7999);
      p.send({ flags: SYN, seq: 9000, mss: 1460 });
      const r = await p.recv();
      expect(r.f).toBe('R.');
      expect(r.ack).toBe(9001);
    });

    it('a segment with a bad checksum is ignored', async () => {
      const p = await peer(7100);
      p.send({ flags: SYN, mss: 1460, badChecksum: true });
      await p.recvNothing();
    });

    it('an in-window RST that is not exact gets a challenge ACK; the connection survives', async () => {
      const p = await peer(7100);
      await p.handshake();
      p.send({ flags: RST, seq: p.seq + 1000 });
      const a = await p.recv();
      expect(a.f).toBe('.');
      expect(a.ack).toBe(p.seq);
      p.send({ flags: ACK | PSH, payload: Buffer.from('still alive') });
      const echo = await p.recv();
      expect(Buffer.from(echo.payload).toString()).toBe('still alive');
    });

    it('data outside the window is answered with an ACK for RCV.NXT', async () => {
      const p = await peer(7100);
      await p.handshake();
      p.send({ flags: ACK | PSH, seq: p.seq + 5_000_000, payload: Buffer.from('way out') });
      const a = await p.recv();
      expect(a.f).toBe('.');
      expect(a.ack).toBe(p.seq);
      expect(a.payload.length).toBe(0);
    });

    it('out-of-order data gets immediate duplicate ACKs with SACK blocks', async () => {
      const p = await peer(7100);
      await p.handshake();
      const base = p.seq;
      p.send({ flags: ACK, seq: base + 10, payload: Buffer.from('0123456789') });
      let a = await p.recv();
      expect(a.ack).toBe(base);
      expect(a.sack).toEqual([[base + 10, base + 20]]);
      p.send({ flags: ACK, seq: base + 30, payload: Buffer.from('0123456789') });
      a = await p.recv();
      expect(a.ack).toBe(base);
      expect(a.sack).toEqual([[base + 30, base + 40], [base + 10, base + 20]]);
    });

    it('FIN in ESTABLISHED is ACKed; the echo server then closes with its own FIN', async () => {
      const p = await peer(7100);
      await p.handshake();
      p.send({ flags: FIN | ACK });
      p.seq++;
      const segs = [await p.recv()];
      if (!(segs[0]!.flags & FIN)) segs.push(await p.recv());
      expect(segs.some((s) => s.ack === p.seq)).toBe(true);
      expect(segs.some((s) => s.f === 'F.')).toBe(true);
    });

    it('zero window: the stack probes and sends once the window opens', async () => {
      const p = await peer(7102);
      p.send({ flags: SYN, mss: 1460, wscale: 0, sackPermitted: true, ts: [p.tsVal, 0] });
      const sa = await p.recv();
      p.seq++;
      p.ack = sa.seq + 1;
      p.send({ flags: ACK, wnd: 0 });
      const probe = await p.recv(5000);
      expect(probe.payload.length).toBe(0);
      expect(probe.seq).toBe(p.ack - 1); // SND.UNA - 1
      p.send({ flags: ACK, wnd: 65535 });
      const d = await p.recv(3000);
      expect(Buffer.from(d.payload).toString()).toBe('hello');
    });

    it('TIME-WAIT: a retransmitted FIN is re-ACKed and a SYN with a newer timestamp reopens the port pair', async () => {
      const p = await peer(7101);
      await p.handshake();
      const fin = await p.recv();
      expect(fin.f).toBe('F.');
      p.ack = fin.seq + 1;
      p.tsVal++;
      p.send({ flags: FIN | ACK });
      p.seq++;
      const a = await p.recv();
      expect(a.ack).toBe(p.seq);
      expect(tcp.connections().some((c) => c.remotePort === p.sport && c.state === 'TIME-WAIT')).toBe(true);
      p.send({ flags: FIN | ACK, seq: p.seq - 1 });
      expect((await p.recv()).ack).toBe(p.seq);
      p.tsVal += 100;
      p.send({ flags: SYN, seq: p.seq + 100_000, mss: 1460, sackPermitted: true, ts: [p.tsVal, 0] });
      const sa = await p.recv();
      expect(sa.f).toBe('S.');
      expect(sa.ack).toBe(p.seq + 100_001);
      expect(tcp.counters.timeWaitReused).toBeGreaterThanOrEqual(1);
    });
  });
}
