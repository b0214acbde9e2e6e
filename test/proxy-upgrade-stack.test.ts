// WebSocket through the proxy on strata's own TCP/IP stack: the proxy listens
// on the TAP and AF_XDP transports in a private lab, a real ws client runs in
// the lab's client namespace, the ws echo server upstream is reached over
// the kernel's loopback. The tunnel carries text and a 4 MiB binary message
// both ways and the client's close reaches the upstream.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { resolve } from 'node:path';
import type { AddressInfo } from 'node:net';
import * as http from 'node:http';
import { WebSocketServer } from 'ws';
import { rootSkipReason } from './helpers/lab.js';
import { openStackLab } from './helpers/stack-lab.js';
import { probeTransports } from '../src/link/native.js';
import type { Lab } from '../src/lab/topo.js';
import { KernelTransport, type StackTransport } from '../src/l7/transport/index.js';
import { HttpServer } from '../src/l7/server/index.js';
import { Proxy, Cluster, type AccessLogEntry } from '../src/l7/proxy/index.js';

const exec = promisify(execFile);
const root = resolve(import.meta.dirname, '..');

for (const kind of ['tap', 'afxdp'] as const) {
  const skip = rootSkipReason() ?? (probeTransports()[kind].available ? null : probeTransports()[kind].reason!);

  describe.skipIf(skip !== null)(`WebSocket through the proxy on ${kind}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let lab: Lab;
    let t: StackTransport;
    let server: HttpServer;
    let proxy: Proxy;
    let upstream: http.Server;
    let wss: WebSocketServer;
    const closes: number[] = [];
    const logs: AccessLogEntry[] = [];
    let addr = '';
    const kt = new KernelTransport();

    beforeAll(async () => {
      ({ lab, t, addr } = await openStackLab(kind, `w${kind[0]}`));
      upstream = http.createServer();
      wss = new WebSocketServer({ server: upstream });
      wss.on('connection', (ws) => {
        ws.on('message', (m, binary) => ws.send(m, { binary }));
        ws.on('close', (code) => closes.push(code));
      });
      await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
      proxy = new Proxy({
        routes: [{ name: 'r', rules: [{ backendRefs: [{ name: 'ws' }] }] }],
        clusters: [new Cluster({ name: 'ws', endpoints: [{ address: '127.0.0.1', port: (upstream.address() as AddressInfo).port }], transport: kt })],
        onLog: (e) => logs.push(e),
      });
      server = new HttpServer(proxy.handler, proxy.upgradeServerOptions());
      await server.listen(t, 8090, addr);
    });

    afterAll(async () => {
      await server?.close();
      proxy?.close();
      for (const c of wss?.clients ?? []) c.terminate();
      wss?.close();
      await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
      await t?.close();
      lab?.down();
    });

    it('a ws client in the client namespace talks to the upstream through the tunnel', async () => {
      const argv = lab.client([process.execPath, resolve(root, 'test/helpers/ws-client.mjs'), `ws://${addr}:8090/lab`]);
      const { stdout } = await exec(argv[0]!, argv.slice(1), { cwd: root, maxBuffer: 1 << 20 });
      const r = JSON.parse(stdout.trim()) as { opened: boolean; texts: string[]; bigOk: boolean; bigLength: number; close: { code: number; reason: string }; error: string | null };
      expect(r.error).toBeNull();
      expect(r.opened).toBe(true);
      expect(r.texts).toEqual(['message 0', 'message 1', 'message 2']);
      expect(r.bigLength).toBe(4 * 1024 * 1024);
      expect(r.bigOk).toBe(true);
      expect(r.close).toEqual({ code: 1000, reason: 'done' });
      for (let i = 0; i < 200 && (closes.length === 0 || logs.length === 0); i++) await new Promise((res) => setTimeout(res, 10));
      expect(closes).toEqual([1000]);
      expect(logs[0]).toMatchObject({ status: 101, cluster: 'ws', reason: null });
      expect(logs[0]!.tunnel!.bytesToUpstream).toBeGreaterThan(4 * 1024 * 1024);
      expect(logs[0]!.tunnel!.bytesToClient).toBeGreaterThan(4 * 1024 * 1024);
      expect(proxy.stats.tunnels).toMatchObject({ opened: 1, active: 0, closed: 1 });
    });
  });
}
