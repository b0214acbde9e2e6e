// Issue 3 acceptance, integrity: N bytes move in EACH direction at once over
// one connection between strata's TCP and the Linux kernel's, and both
// SHA-256s match, over TAP and AF_XDP:
//   - on a clean link, with the stack as server and as client;
//   - with 2% random loss both ways in the client namespace (iptables
//     statistic on c0's INPUT and OUTPUT), the stack as server and as client.
// (Reordering, duplication and corruption through MemLink: stack-accept-sim.)
//
// N is STRATA_ACCEPT_BYTES (default 64 MiB; the issue's 1 GiB is
// STRATA_ACCEPT_BYTES=1073741824), and under loss STRATA_ACCEPT_LOSS_BYTES
// (default 16 MiB: at 2% loss both ways the transfer is loss-bound).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { run } from '../src/util/run.js';
import { TcpServer, TcpSocket } from '../src/stack/tcp/socket.js';
import { KINDS, StackHost, lastJson, nodePeer, pumpStream, stackSkipReason, streamSha, waitFor } from './helpers/stack-host.js';

const MiB = 1024 * 1024;
const N = Number(process.env.STRATA_ACCEPT_BYTES ?? 64 * MiB);
const N_LOSS = Number(process.env.STRATA_ACCEPT_LOSS_BYTES ?? Math.min(N, 16 * MiB));
/** Generous bound per transfer: a floor of 1 MiB/s under loss, 4 MiB/s clean, plus setup. */
const budget = (n: number, lossy: boolean): number => 30_000 + Math.ceil(n / (lossy ? 1 * MiB : 4 * MiB)) * 1000;

// Seeds: what the client sends, what the server sends.
const C_SEED = 11, S_SEED = 22;

interface PeerResult { port?: number; got: number; sha: string; error?: string }
interface ServerSide { got: number; sha: string; done: boolean; error: string | null }

for (const kind of KINDS) {
  const skip = stackSkipReason(kind);
  describe.skipIf(skip !== null)(`integrity against the kernel on ${kind}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: StackHost;
    /** Per client port: what the stack's bulk server received. */
    const received = new Map<number, ServerSide>();
    let serverBytes = N;

    beforeAll(() => {
      h = StackHost.open(kind, { tag: 'int', tcp: { sendBuffer: 1 * MiB, recvBuffer: 1 * MiB } });
      // The bulk service: sends serverBytes of KeyStream(S_SEED) and hashes what arrives.
      // Half-open allowed on both ends: whoever finishes sending first must still
      // receive the rest (with allowHalfOpen off, node:net ends on the peer's FIN).
      new TcpServer(h.tcp, { allowHalfOpen: true }, (s) => {
        const r: ServerSide = { got: 0, sha: '', done: false, error: null };
        received.set(s.remotePort!, r);
        const hash = createHash('sha256');
        s.on('data', (d: Buffer) => { hash.update(d); r.got += d.length; });
        s.on('end', () => { r.sha = hash.digest('hex'); r.done = true; });
        s.on('error', (e) => { r.error = String((e as { code?: string }).code ?? e); });
        pumpStream(s, S_SEED, serverBytes);
      }).listen(7100);
    });

    afterAll(() => { h?.flushClientFirewall(); h?.close(); });

    /** A node:net client in the client namespace: sends n bytes of C_SEED, hashes what comes back. */
    const kernelClient = (n: number, timeoutMs: number): Promise<string> => nodePeer(h.lab.clientNs, `
      const hash = crypto.createHash('sha256'); let got = 0;
      let port = 0;
      const s = net.connect({ port: 7100, host: '${h.addr}', allowHalfOpen: true }, () => { port = s.localPort; pump(s, ${C_SEED}, ${n}); });
      s.on('data', (d) => { hash.update(d); got += d.length; });
      // 'close' comes after both our FIN was handed over and the stack's arrived.
      let sha = ''; s.on('end', () => { sha = hash.digest('hex'); });
      s.on('close', () => { out({ port, got, sha }); process.exit(0); });
      s.on('error', (e) => { out({ got, sha: '', error: e.code }); process.exit(0); });
    `, { timeoutMs }).done;

    async function stackServes(n: number, lossy: boolean): Promise<void> {
      serverBytes = n;
      const r = lastJson<PeerResult>(await kernelClient(n, budget(n, lossy)));
      expect(r.error).toBeUndefined();
      expect(r.got).toBe(n);
      expect(r.sha).toBe(streamSha(S_SEED, n));
      const s = received.get(r.port!);
      expect(s).toBeDefined();
      // The client's last bytes and FIN may still be in flight when it exits.
      await waitFor(() => s!.done || s!.error !== null, lossy ? 30_000 : 10_000);
      expect(s!.error).toBeNull();
      expect(s!.done).toBe(true);
      expect(s!.got).toBe(n);
      expect(s!.sha).toBe(streamSha(C_SEED, n));
    }

    async function stackConnects(n: number, lossy: boolean): Promise<void> {
      const peer = nodePeer(h.lab.clientNs, `
        const srv = net.createServer({ allowHalfOpen: true }, (s) => {
          const hash = crypto.createHash('sha256'); let got = 0;
          s.on('data', (d) => { hash.update(d); got += d.length; });
          s.on('end', () => { out({ port: s.remotePort, got, sha: hash.digest('hex') }); srv.close(); });
          s.on('error', (e) => { out({ got, sha: '', error: e.code }); process.exit(0); });
          pump(s, ${S_SEED}, ${n});
        });
        srv.listen(9100, '${h.lab.clientAddr}', () => console.log('ready'));
      `, { timeoutMs: budget(n, lossy) });
      await peer.ready;
      const hash = createHash('sha256');
      let got = 0;
      await new Promise<void>((resolve, reject) => {
        const c = new TcpSocket(h.tcp, { allowHalfOpen: true });
        c.on('data', (d: Buffer) => { hash.update(d); got += d.length; });
        c.on('end', () => resolve());
        c.on('error', reject);
        c.connect(9100, h.lab.clientAddr, () => pumpStream(c, C_SEED, n));
      });
      expect(got).toBe(n);
      expect(hash.digest('hex')).toBe(streamSha(S_SEED, n));
      const r = lastJson<PeerResult>(await peer.done);
      expect(r.error).toBeUndefined();
      expect(r.got).toBe(n);
      expect(r.sha).toBe(streamSha(C_SEED, n));
    }

    const lossRules = (): void => {
      for (const chain of ['INPUT', 'OUTPUT']) {
        run(h.client(['iptables', '-A', chain, chain === 'INPUT' ? '-i' : '-o', h.lab.clientIface,
          '-m', 'statistic', '--mode', 'random', '--probability', '0.02', '-j', 'DROP']));
      }
    };

    it(`clean link, stack as server: ${N} bytes each way, SHA-256 match`, async () => {
      const rtx = h.tcp.counters.retransSegs;
      await stackServes(N, false);
      expect(h.tcp.counters.drop('BAD_CHECKSUM')).toBe(0);
      // A clean veth loses nothing the stack would have to resend often.
      expect(h.tcp.counters.retransSegs - rtx).toBeLessThan(N / 1448 / 100);
    }, budget(N, false) + 10_000);

    it(`clean link, stack as client: ${N} bytes each way, SHA-256 match`, async () => {
      await stackConnects(N, false);
    }, budget(N, false) + 10_000);

    it(`2% loss both ways, stack as server: ${N_LOSS} bytes each way, SHA-256 match, retransmissions seen`, async () => {
      const rtx = h.tcp.counters.retransSegs;
      lossRules();
      try {
        await stackServes(N_LOSS, true);
      } finally { h.flushClientFirewall(); }
      expect(h.tcp.counters.retransSegs).toBeGreaterThan(rtx);
    }, budget(N_LOSS, true) + 10_000);

    it(`2% loss both ways, stack as client: ${N_LOSS} bytes each way, SHA-256 match, retransmissions seen`, async () => {
      const rtx = h.tcp.counters.retransSegs;
      lossRules();
      try {
        await stackConnects(N_LOSS, true);
      } finally { h.flushClientFirewall(); }
      expect(h.tcp.counters.retransSegs).toBeGreaterThan(rtx);
    }, budget(N_LOSS, true) + 10_000);
  });
}
