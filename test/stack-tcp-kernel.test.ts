// strata's TCP against the Linux kernel's, in a private lab, over TapLink
// and AfXdpLink: a node:net client in the client namespace talks to a
// TcpServer on the stack, and a TcpSocket on the stack talks to a node:net
// server in the client namespace; megabytes each way with SHA-256 checked;
// then the same with 2% random loss (iptables statistic) in the client
// namespace, and curl fetching from a minimal HTTP responder on the stack.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
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
import { Tcp } from '../src/stack/tcp/tcp.js';
import { TcpServer, TcpSocket } from '../src/stack/tcp/socket.js';
import type { Lab } from '../src/lab/topo.js';

const exec = promisify(execFile);
const MB = 1024 * 1024;

/** Deterministic payload the peer can regenerate: byte i = (i*131 + (i>>11)) & 255. */
const PATTERN = 'function pat(n){const b=Buffer.allocUnsafe(n);for(let i=0;i<n;i++)b[i]=(i*131+(i>>11))&255;return b;}';
function pat(n: number): Buffer { const b = Buffer.allocUnsafe(n); for (let i = 0; i < n; i++) b[i] = (i * 131 + (i >> 11)) & 255; return b; }
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

for (const kind of ['tap', 'afxdp'] as const) {
  const skip = rootSkipReason() ?? (probeTransports()[kind].available ? null : probeTransports()[kind].reason!);

  describe.skipIf(skip !== null)(`TCP on ${kind} vs the kernel${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let lab: Lab;
    let link: Link;
    let prog: XdpProgram | undefined;
    let stack: Stack;
    let driver: StackDriver;
    let tcp: Tcp;
    let server: TcpServer;
    let addr: string;

    beforeAll(() => {
      lab = privateLab(`tcp${kind[0]}`);
      lab.up();
      if (kind === 'tap') {
        addr = lab.tapAddr;
        link = TapLink.open({ name: lab.tapIface, netns: lab.serverNs, frameCount: 2048 });
        stack = new Stack({ link, addrs: [{ addr, prefixLen: 24 }], gateway: lab.tapKernelAddr });
      } else {
        addr = lab.afxdpAddr;
        // Copy-mode AF_XDP gets veth's unfinished (offloaded) checksums: the client computes them.
        run(lab.client(['ethtool', '-K', lab.clientIface, 'tx', 'off']));
        prog = XdpProgram.attach({ iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, mode: 'auto' });
        prog.steer({ addr });
        link = AfXdpLink.open({ iface: lab.serverIface, netns: lab.serverNs, queue: 0, xdp: prog, frameCount: 2048 });
        stack = new Stack({ link, addrs: [{ addr, prefixLen: 24 }] });
      }
      tcp = Tcp.attach(stack);
      driver = runStack(stack);
      // Echo service.
      server = new TcpServer(tcp, {}, (s) => { s.pipe(s); s.on('error', () => {}); });
      server.listen(7000);
      // A minimal HTTP/1.1 responder for curl.
      new TcpServer(tcp, {}, (s) => {
        let req = '';
        s.on('data', (d: Buffer) => {
          req += d.toString('latin1');
          if (req.includes('\r\n\r\n')) {
            const body = pat(256 * 1024);
            s.end(Buffer.concat([Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n`), body]));
          }
        });
        s.on('error', () => {});
      }).listen(8080);
    });

    afterAll(() => {
      try { run(lab.client(['iptables', '-F', 'INPUT'])); run(lab.client(['iptables', '-F', 'OUTPUT'])); } catch { /* lab may be gone */ }
      driver?.stop();
      stack?.close();
      link?.close();
      prog?.detach();
      lab?.down();
    });

    /** A node:net client in the client namespace: sends n bytes to the echo server, checks the echo. */
    const kernelClient = (n: number): Promise<string> => nodeIn(lab.clientNs, `
      ${PATTERN}
      const net = require('node:net'); const crypto = require('node:crypto');
      const data = pat(${n}); const h = crypto.createHash('sha256'); let got = 0;
      const s = net.connect(7000, '${addr}', () => { s.end(data); });
      s.on('data', (d) => { h.update(d); got += d.length; });
      s.on('end', () => { console.log(JSON.stringify({ got, sha: h.digest('hex') })); process.exit(0); });
      s.on('error', (e) => { console.log(JSON.stringify({ error: e.code })); process.exit(0); });
      setTimeout(() => { console.log(JSON.stringify({ timeout: got })); process.exit(0); }, 100000);
    `).done;

    it('a node:net client in the client namespace echoes 4 MiB through a TcpServer on the stack', async () => {
      const r = JSON.parse(await kernelClient(4 * MB)) as { got: number; sha: string };
      expect(r).toEqual({ got: 4 * MB, sha: sha(pat(4 * MB)) });
      expect(tcp.counters.drop('BAD_CHECKSUM')).toBe(0);
    });

    it('a TcpSocket on the stack echoes 4 MiB through a node:net server in the client namespace', async () => {
      const peer = nodeIn(lab.clientNs, `
        const net = require('node:net');
        const srv = net.createServer((s) => { s.pipe(s); s.on('end', () => srv.close()); });
        srv.listen(9000, '${lab.clientAddr}', () => console.log('ready'));
        srv.on('close', () => { console.log('{}'); process.exit(0); });
        setTimeout(() => process.exit(1), 100000);
      `);
      await peer.ready;
      const data = pat(4 * MB);
      const got: Buffer[] = [];
      const done = new Promise<void>((resolve, reject) => {
        const c = new TcpSocket(tcp);
        c.on('data', (d: Buffer) => got.push(d));
        c.on('end', () => resolve());
        c.on('error', reject);
        c.connect(9000, lab.clientAddr, () => { c.end(data); });
      });
      await done;
      const echoed = Buffer.concat(got);
      expect(echoed.length).toBe(data.length);
      expect(sha(echoed)).toBe(sha(data));
      await peer.done;
    });

    it('curl fetches 256 KiB from an HTTP responder on the stack', async () => {
      const full = lab.client(['sh', '-c', `curl -s --max-time 30 http://${addr}:8080/ | sha256sum`]);
      const r = await exec(full[0]!, full.slice(1), { timeout: 40_000 });
      expect(r.stdout.split(' ')[0]).toBe(sha(pat(256 * 1024)));
    });

    it('with 2% random loss both ways in the client namespace, 2 MiB still echo intact and the stack recovered', async () => {
      const rules = [['INPUT'], ['OUTPUT']].map(([chain]) => ['iptables', '-A', chain!, '-p', 'tcp', '-m', 'statistic', '--mode', 'random', '--probability', '0.02', '-j', 'DROP']);
      for (const r of rules) run(lab.client(r));
      const rtx0 = tcp.counters.retransSegs;
      try {
        const r = JSON.parse(await kernelClient(2 * MB)) as { got: number; sha: string };
        expect(r).toEqual({ got: 2 * MB, sha: sha(pat(2 * MB)) });
      } finally {
        run(lab.client(['iptables', '-F', 'INPUT']));
        run(lab.client(['iptables', '-F', 'OUTPUT']));
      }
      expect(tcp.counters.retransSegs).toBeGreaterThan(rtx0);
    });

    it('a SYN to a closed port on the stack is refused (RST)', async () => {
      const r = await nodeIn(lab.clientNs, `
        const s = require('node:net').connect(7999, '${addr}');
        s.on('connect', () => { console.log('connected'); process.exit(0); });
        s.on('error', (e) => { console.log(e.code); process.exit(0); });
      `).done;
      expect(r).toBe('ECONNREFUSED');
      expect(tcp.counters.rstsSent).toBeGreaterThan(0);
    });
  });
}
