// The same HTTP server and proxy code on strata's userspace TCP, on TAP and
// on AF_XDP, answering curl and wrk from the lab's client namespace. This is
// the transport seam's reason to exist: nothing above L7Transport changes.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { rootSkipReason } from './helpers/lab.js';
import { openStackLab } from './helpers/stack-lab.js';
import { probeTransports } from '../src/link/native.js';
import type { Lab } from '../src/lab/topo.js';
import { KernelTransport, type StackTransport } from '../src/l7/transport/index.js';
import { HttpServer } from '../src/l7/server/index.js';
import { helloApp, echoApp, HELLO_BODY } from '../src/apps/index.js';
import { Proxy, Cluster } from '../src/l7/proxy/index.js';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

const exec = promisify(execFile);

for (const kind of ['tap', 'afxdp'] as const) {
  const skip = rootSkipReason() ?? (probeTransports()[kind].available ? null : probeTransports()[kind].reason!);

  describe.skipIf(skip !== null)(`HTTP server and proxy on ${kind}${skip ? ` (skipped: ${skip})` : ''}`, () => {
    let lab: Lab;
    let t: StackTransport;
    let hello: HttpServer;
    let echo: HttpServer;
    let proxyServer: HttpServer;
    let proxy: Proxy;
    let upstream: http.Server;
    let addr = '';
    const kt = new KernelTransport();

    beforeAll(async () => {
      ({ lab, t, addr } = await openStackLab(kind, `h${kind[0]}`));
      hello = new HttpServer(helloApp);
      await hello.listen(t, 8080, addr);
      echo = new HttpServer(echoApp);
      await echo.listen(t, 8081, addr);
      // The proxy on the stack, its upstream a node:http server on loopback (kernel transport).
      upstream = http.createServer((req, res) => res.end(`upstream ${req.url} xff=${req.headers['x-forwarded-for']}`));
      await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
      proxy = new Proxy({ routes: [{ name: 'r', rules: [{ backendRefs: [{ name: 'up' }] }] }], clusters: [new Cluster({ name: 'up', endpoints: [{ address: '127.0.0.1', port: (upstream.address() as AddressInfo).port }], transport: kt })] });
      proxyServer = new HttpServer(proxy.handler);
      await proxyServer.listen(t, 8082, addr);
    });

    afterAll(async () => {
      await Promise.all([hello?.close(), echo?.close(), proxyServer?.close()]);
      proxy?.close();
      await new Promise<void>((r) => (upstream ? upstream.close(() => r()) : r()));
      await t?.close();
      lab?.down();
    });

    it('curl GET hello and POST echo from the client namespace', async () => {
      const g = await exec(lab.client(['curl', '-sS', '--max-time', '10', `http://${addr}:8080/`])[0]!, lab.client(['curl', '-sS', '--max-time', '10', `http://${addr}:8080/`]).slice(1));
      expect(g.stdout).toBe(HELLO_BODY);
      const body = 'x'.repeat(100_000);
      const argv = lab.client(['curl', '-sS', '--max-time', '20', '--data-binary', body.slice(0, 1000), `http://${addr}:8081/`]);
      const e = await exec(argv[0]!, argv.slice(1));
      expect(e.stdout).toBe(body.slice(0, 1000));
    });

    it('wrk: bounded keep-alive run against hello, zero errors', async () => {
      const argv = lab.client(['wrk', '-t1', '-c10', '-d2s', `http://${addr}:8080/`]);
      const w = await exec(argv[0]!, argv.slice(1));
      expect(Number(/(\d+) requests in/.exec(w.stdout)?.[1] ?? 0)).toBeGreaterThan(0);
      expect(w.stdout).not.toMatch(/Socket errors|Non-2xx/);
    });

    it('the proxy on the stack forwards to a kernel upstream', async () => {
      const argv = lab.client(['curl', '-sS', '--max-time', '10', `http://${addr}:8082/p?x=1`]);
      const r = await exec(argv[0]!, argv.slice(1));
      expect(r.stdout).toBe(`upstream /p?x=1 xff=${lab.clientAddr}`);
    });
  });
}
