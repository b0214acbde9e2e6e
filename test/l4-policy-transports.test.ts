// L3/L4 policy enforced at each transport's earliest layer (issue 4): the XDP
// deny map on AF_XDP, conntrack on TAP, accept() on the kernel. A deny rule
// for the client's address makes curl fail and the layer counts the drops;
// replacing the rules with none lets the same client through again.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import * as net from 'node:net';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import { probeTransports } from '../src/link/native.js';
import type { Lab } from '../src/lab/topo.js';
import { StackTransport, KernelTransport } from '../src/l7/transport/index.js';
import { HttpServer } from '../src/l7/server/index.js';
import { helloApp, HELLO_BODY } from '../src/apps/index.js';
import type { L4DenyEntry } from '../src/l7/policy/types.js';

const exec = promisify(execFile);
const deny = (prefix: string, port?: number): L4DenyEntry => ({
  prefix, family: 4, prefixLen: Number(prefix.split('/')[1]), protocol: 'TCP', source: 'test/ingressDeny[0]', ...(port !== undefined ? { port } : {}),
});

for (const kind of ['tap', 'afxdp'] as const) {
  const skip = rootSkipReason() ?? (probeTransports()[kind].available ? null : probeTransports()[kind].reason!);
  describe.skipIf(skip !== null)(`L3/L4 deny on ${kind}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let lab: Lab;
    let t: StackTransport;
    let hello: HttpServer;
    let addr = '';
    const curl = async (port: number): Promise<{ ok: boolean; body: string }> => {
      const argv = lab.client(['curl', '-sS', '--max-time', '3', `http://${addr}:${port}/`]);
      try { return { ok: true, body: (await exec(argv[0]!, argv.slice(1))).stdout }; } catch { return { ok: false, body: '' }; }
    };

    beforeAll(async () => {
      lab = privateLab(`l4${kind[0]}`);
      lab.up();
      addr = kind === 'afxdp' ? lab.afxdpAddr : lab.tapAddr;
      t = kind === 'afxdp'
        ? await StackTransport.open('afxdp', { iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, addr })
        : await StackTransport.open('tap', { iface: lab.tapIface, netns: lab.serverNs, addr, gateway: lab.tapKernelAddr });
      hello = new HttpServer(helloApp);
      await hello.listen(t, 8080, addr);
      await hello.listen(t, 8081, addr);
    });
    afterAll(async () => {
      await hello?.close();
      await t?.close();
      lab?.down();
    });

    it(`drops the denied source at ${kind === 'afxdp' ? 'XDP' : 'conntrack'} for the denied port only, and lifts it`, async () => {
      expect((await curl(8080)).body).toBe(HELLO_BODY);
      const r = t.setL4Deny([deny(`${lab.clientAddr}/32`, 8080)]);
      expect(r).toMatchObject({ where: kind === 'afxdp' ? 'xdp' : 'conntrack', installed: 1 });
      const before = t.policyDrops();
      expect((await curl(8080)).ok).toBe(false);
      expect(t.policyDrops()).toBeGreaterThan(before);
      // Another port from the same source is untouched.
      expect((await curl(8081)).body).toBe(HELLO_BODY);
      t.setL4Deny([]);
      expect((await curl(8080)).body).toBe(HELLO_BODY);
    });
  });
}

describe('L3/L4 deny on the kernel transport (at accept)', () => {
  it('closes denied connections before reading a byte, and only those', async () => {
    const kt = new KernelTransport();
    const hello = new HttpServer(helloApp);
    const l = await hello.listen(kt, 0, '127.0.0.1');
    const get = (): Promise<string> => new Promise((resolve) => {
      const s = net.connect(l.port, '127.0.0.1', () => s.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'));
      let got = '';
      s.on('data', (d) => { got += d; });
      s.on('close', () => resolve(got));
      s.on('error', () => { /* reset by the deny */ });
    });
    try {
      expect(await get()).toContain(HELLO_BODY);
      expect(kt.setL4Deny([deny('127.0.0.0/8', l.port)])).toEqual({ where: 'accept', installed: 1, skipped: [] });
      expect(await get()).toBe('');
      expect(kt.refusedByPolicy).toBe(1);
      kt.setL4Deny([deny('10.0.0.0/8')]);
      expect(await get()).toContain(HELLO_BODY);
    } finally {
      await hello.close();
      await kt.close();
    }
  });
});
