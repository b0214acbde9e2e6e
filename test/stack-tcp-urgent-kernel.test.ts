// Urgent data against the Linux kernel as the real peer, in a private lab,
// over TapLink and AfXdpLink. A small C program in the client namespace
// (src/stack/tcp/tools/urgpeer.c, built here with clang) sends with MSG_OOB
// to a TcpServer on the stack, and reads what a TcpSocket on the stack sends
// with writeUrgent(): with SO_OOBINLINE (SIOCATMARK shows where the kernel
// put the mark), and without it, Linux's default, where recv(MSG_OOB) takes
// the last urgent byte out of the stream. The stack itself always delivers
// inline (RFC 6093 §5). The stack runs in this process (test/helpers/stack-host.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { KINDS, StackHost, stackSkipReason } from './helpers/stack-host.js';
import { inNetns } from '../src/util/run.js';
import { TcpServer } from '../src/stack/tcp/socket.js';

const exec = promisify(execFile);
const SRC = new URL('../src/stack/tcp/tools/urgpeer.c', import.meta.url).pathname;
/** What the stack sends: urgent data spanning three segments, its last byte 'G'. */
const HEAD = 'hello';
const URGENT = `${'U'.repeat(2999)}G`;
const TAIL = 'tail';
const hex = (s: string): string => Buffer.from(s).toString('hex');

for (const kind of KINDS) {
  const skip = stackSkipReason(kind);

  describe.skipIf(skip !== null)(`urgent data on ${kind} vs the kernel${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let h: StackHost | undefined;
    let dir: string;
    let bin: string;
    const servers: TcpServer[] = [];
    /** Per connection to port 7300: the bytes as they arrived, and where each 'urgent' said the urgent data ends. */
    const received: { data: string; marks: number[] }[] = [];

    const peer = async (mode: 'send' | 'inline' | 'oob', port: number): Promise<string> => {
      const argv = inNetns(h!.lab.clientNs, [bin, mode, h!.addr, String(port)]);
      return (await exec(argv[0]!, argv.slice(1), { timeout: 30_000 })).stdout;
    };

    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'strata-urgpeer-'));
      bin = join(dir, 'urgpeer');
      execFileSync('clang', ['-O2', '-Wall', '-o', bin, SRC]);
      h = StackHost.open(kind, { tag: 'urg', frameCount: 1024 });
      const tcp = h.tcp;
      // 7300 takes what the kernel sends; 7301 sends urgent data to whoever connects.
      const sink = new TcpServer(tcp, {}, (s) => {
        const r = { data: '', marks: [] as number[] };
        received.push(r);
        s.on('urgent', (n: number) => { r.marks.push(r.data.length + n); });
        s.on('data', (d: Buffer) => { r.data += d.toString('latin1'); });
        s.on('end', () => s.end());
        s.on('error', () => {});
      });
      sink.listen(7300);
      const talker = new TcpServer(tcp, {}, (s) => {
        s.on('error', () => {});
        s.write(HEAD);
        s.writeUrgent(URGENT);
        s.end(TAIL);
      });
      talker.listen(7301);
      servers.push(sink, talker);
    });

    afterAll(() => {
      for (const s of servers) s.close();
      h?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it('the kernel sends "!" with MSG_OOB: the stack signals urgent data ending just past it, and the byte arrives inline', async () => {
      const in0 = h!.tcp.counters.urgSegsIn;
      expect(await peer('send', 7300)).toBe('sent\n');
      expect(received).toHaveLength(1);
      expect(received[0]).toEqual({ data: 'abc!def', marks: [4] });
      expect(h!.tcp.counters.urgSegsIn).toBeGreaterThan(in0);
    });

    it('writeUrgent to a kernel with SO_OOBINLINE: every byte inline, SIOCATMARK at the last urgent byte', async () => {
      const out0 = h!.tcp.counters.urgSegsOut;
      const out = await peer('inline', 7301);
      // Linux puts the mark on the byte before the pointer (tcp_check_urg: ptr - 1), the 'G'.
      expect(out).toBe(`mark ${HEAD.length + URGENT.length - 1}\ndata ${hex(HEAD + URGENT + TAIL)}\n`);
      // 3000 urgent bytes take three segments at the lab's MTU, each with URG.
      expect(h!.tcp.counters.urgSegsOut - out0).toBeGreaterThanOrEqual(3);
    });

    it('writeUrgent to a kernel without SO_OOBINLINE (Linux\'s default): recv(MSG_OOB) takes the last urgent byte out of the stream', async () => {
      const out = await peer('oob', 7301);
      const at = HEAD.length + URGENT.length - 1;
      expect(out).toBe(`oob ${at} ${hex('G')}\ndata ${hex(HEAD + URGENT.slice(0, -1) + TAIL)}\n`);
    });
  });
}
