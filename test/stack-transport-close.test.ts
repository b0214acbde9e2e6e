// Closing a stack transport leaves no peer with a dead connection: what its
// owner already closed finishes its FIN exchange within the linger time, and
// what is still open is reset. Before, the transport's TX frames were freed
// unsent, so a kernel peer (e.g. the upstream of a pooled keep-alive
// connection) kept an ESTABLISHED socket that nobody would ever answer.
import { describe, it, expect } from 'vitest';
import { rootSkipReason } from './helpers/lab.js';
import { openStackLab } from './helpers/stack-lab.js';
import { spawnIn } from './helpers/stack-host.js';
import { probeTransports } from '../src/link/native.js';
import type { L7Socket } from '../src/l7/transport/types.js';

// The kernel peer: labels each connection by its first byte and reports how it ended.
const PEER = `
const net = require('net');
const ends = {};
let closed = 0;
net.createServer((s) => {
  let label = '?';
  s.once('data', (d) => { label = d.toString()[0]; });
  s.on('end', () => { ends[label] = 'fin'; s.end(); });
  s.on('error', (e) => { ends[label] = e.code; });
  s.on('close', () => { if (++closed === 2) { console.log(JSON.stringify(ends)); process.exit(0); } });
}).listen(9000, process.argv[1], () => console.log('ready'));
`;

for (const kind of ['tap', 'afxdp'] as const) {
  const skip = rootSkipReason() ?? (probeTransports()[kind].available ? null : probeTransports()[kind].reason!);

  describe.skipIf(skip !== null)(`closing the stack transport on ${kind}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    it('a connection its owner closed ends with FIN, one still open is reset, and both peers hear it', async () => {
      const { lab, t } = await openStackLab(kind, `c${kind[0]}`);
      // TAP's peer is the server namespace's kernel; AF_XDP's is the client namespace across the veth.
      const [ns, peerAddr] = kind === 'tap' ? [lab.serverNs, lab.tapKernelAddr] : [lab.clientNs, lab.clientAddr];
      const peer = spawnIn(ns, ['node', '-e', PEER, peerAddr], { timeoutMs: 20_000 });
      let closed = false;
      try {
        await peer.ready;
        const open = await t.connect(9000, peerAddr);
        const done = await t.connect(9000, peerAddr);
        open.write('o');
        done.write('d');
        await new Promise((r) => setTimeout(r, 100));
        const heard: string[] = [];
        (open as L7Socket & NodeJS.EventEmitter).on('error', (e: Error & { code?: string }) => heard.push(e.code ?? e.message));
        done.destroy(); // FIN: nothing unread
        await t.close();
        closed = true;
        expect(JSON.parse(await peer.done)).toEqual({ d: 'fin', o: 'ECONNRESET' });
        // The owner of the connection left open hears that the stack went away.
        expect(heard).toEqual(['ECONNABORTED']);
      } finally {
        peer.kill();
        if (!closed) await t.close();
        lab.down();
      }
    }, 30_000);
  });
}
