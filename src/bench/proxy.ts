// The proxy workload of `strata bench` (issue 4's benchmarks): small
// keep-alive GETs with wrk through a reverse proxy to one kernel upstream,
// for `strata proxy` on each transport and for nginx (one worker, upstream
// keepalive, access_log off) as the peer, all in the same lab:
//
//   kernel  strata proxy, listener on net.Socket                  10.200.0.2:8080
//   tap     strata proxy, listener on the userspace TCP over TAP  10.201.0.2:8080
//   afxdp   strata proxy, listener on the userspace TCP over AF_XDP 10.200.0.3:8080
//   nginx   nginx -c (worker_processes 1) as a reverse proxy      10.200.0.2:8080
//
// The upstream is the same for all: nginx with one worker returning the
// hello body on 127.0.0.1:8081 in the server namespace (chosen because it is
// faster than any proxy in front of it, so the proxy is what is measured);
// each proxy reaches it over the kernel's loopback with pooled keep-alive
// connections. The proxy's CPU is its own process (nginx: master + worker);
// the upstream's CPU is counted for nobody. With mTLS (the mtls workload)
// the listener requires a client certificate from the dev CA.
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab } from '../lab/topo.js';
import type { ResultRow } from '../report/results.js';
import { pinnedOwner, pinDirFor } from '../xdp/program.js';
import type { Workload } from './workload.js';
import { tryRun } from '../util/run.js';
import {
  benchCpus, numOption, pickTransports, addCleanup, clearLabXdp, interruptAll, medianOf, pinned, removeCleanup, resetInterrupt, startServer, stopServer, strataProxyCli, verdict,
} from './tcp-measure.js';
import {
  HTTP_PORT, HTTP_POINT, httpUnavailable, runHttpVersions, stackUnavailable, warmupFor, wrkLoad,
  type HttpVersion, type LoadFn, type StartedServer, type TlsFiles,
} from './http.js';
import { nginxUnavailable, startNginx, writeProxyConf, writeUpstreamConf } from './nginx.js';

export const PROXY_TRANSPORTS = ['kernel', 'tap', 'afxdp', 'nginx'] as const;
export const UPSTREAM = { addr: '127.0.0.1', port: 8081 } as const;

/** Why `strata proxy` cannot run here, or null. */
function strataProxyUnavailable(): string | null {
  if (!existsSync(new URL('../cli/proxy.js', import.meta.url)) && !existsSync(new URL('../cli/proxy.ts', import.meta.url))) return '`strata proxy` is not part of this build';
  return null;
}

/** The `strata proxy` config for one listener in front of the upstream. */
export function strataProxyConfig(l: { addr: string; port: number; transport: 'kernel' | 'tap' | 'afxdp' }, tls?: TlsFiles): string {
  const lines = [
    'logging: { accessLog: { enabled: false } }',
    ...(tls ? ['tls:', '  - name: server', `    cert: ${JSON.stringify(tls.cert)}`, `    key: ${JSON.stringify(tls.key)}`, `    ca: ${JSON.stringify(tls.ca)}`, '    requireClientCert: true', '    watch: false'] : []),
    'listeners:',
    '  - name: web',
    `    address: ${l.addr}`,
    `    port: ${l.port}`,
    `    transport: ${l.transport}`,
    ...(tls ? ['    tls: server'] : []),
    'clusters:',
    '  - name: hello',
    `    endpoints: [${UPSTREAM.addr}:${UPSTREAM.port}]`,
    'routes:',
    '  - apiVersion: gateway.networking.k8s.io/v1',
    '    kind: HTTPRoute',
    '    metadata: { name: all }',
    '    spec:',
    '      parentRefs: [{ name: web }]',
    '      rules:',
    '        - backendRefs: [{ name: hello }]',
    '',
  ];
  return lines.join('\n');
}

/**
 * Starts `strata proxy --config F` in the lab's server namespace. For the
 * default lab the CLI finds the lab itself (and pins under lab.pinDir);
 * for any other lab it runs with STRATA_LAB=off on explicit addresses, and
 * the AF_XDP listener then pins under the default directory for s0.
 */
async function startStrataProxy(lab: Lab, dir: string, transport: 'kernel' | 'tap' | 'afxdp', addr: string, o: { cpu: number; nice: number; tls?: TlsFiles }): Promise<StartedServer> {
  const cfg = join(dir, `proxy-${transport}.yaml`);
  writeFileSync(cfg, strataProxyConfig({ addr, port: HTTP_PORT, transport }, o.tls));
  const isDefault = lab.prefix === new Lab().prefix;
  const pinDir = isDefault ? lab.pinDir : pinDirFor(lab.serverIface);
  const xdp = transport === 'afxdp';
  const leftovers = (pid: number): void => {
    // A proxy that died without detaching leaves its program and pins: remove them, but only ours.
    tryRun(lab.server(['ip', 'link', 'set', 'dev', lab.serverIface, 'xdp', 'off']));
    if (existsSync(pinDir) && (isDefault || pinnedOwner(pinDir) === pid)) clearLabXdp(lab, pinDir);
  };
  const p = await startServer([...pinned(o.cpu, o.nice), ...lab.server([...strataProxyCli(), '--config', cfg])], /^listening /m,
    isDefault ? {} : { STRATA_LAB: 'off' });
  if (xdp) addCleanup('proxy-xdp', () => { try { p.child.kill('SIGKILL'); } catch { /* gone */ } leftovers(p.pid); });
  return {
    pids: p.pid,
    async stop() {
      await stopServer(p);
      if (xdp) { leftovers(p.pid); removeCleanup('proxy-xdp'); }
    },
  };
}

/** The proxy versions; with tls, every listener requires a client certificate. */
export function proxyVersions(lab: Lab, dir: string, o: { cpu: number; nice: number; tls?: TlsFiles; only?: readonly string[] }): HttpVersion[] {
  const scheme = o.tls ? 'https' : 'http';
  const strata = (transport: 'kernel' | 'tap' | 'afxdp', addr: string): HttpVersion => ({
    transport,
    label: `strata proxy, listener on ${transport === 'kernel' ? 'net.Socket' : `the userspace TCP over ${transport === 'tap' ? 'TAP' : 'AF_XDP'}`}${o.tls ? ', mTLS' : ''}`,
    url: `${scheme}://${addr}:${HTTP_PORT}/`,
    unavailable: () => httpUnavailable() ?? nginxUnavailable() ?? strataProxyUnavailable() ?? (transport === 'kernel' ? null : stackUnavailable(transport)),
    start: () => startStrataProxy(lab, dir, transport, addr, o),
  });
  const all: HttpVersion[] = [
    strata('kernel', lab.kernelAddr),
    strata('tap', lab.tapAddr),
    strata('afxdp', lab.afxdpAddr),
    {
      transport: 'nginx',
      label: `nginx (1 worker) as a reverse proxy${o.tls ? ', mTLS' : ''}`,
      url: `${scheme}://${lab.kernelAddr}:${HTTP_PORT}/`,
      unavailable: () => httpUnavailable() ?? nginxUnavailable(),
      start: async () => {
        const d = join(dir, 'nginx-proxy');
        const listen = { addr: lab.kernelAddr, port: HTTP_PORT };
        const conf = writeProxyConf(d, { listen, upstream: UPSTREAM, ...(o.tls ? { tls: o.tls } : {}) });
        return startNginx(lab, d, conf, listen, { cpu: o.cpu, nice: o.nice });
      },
    },
  ];
  return o.only ? all.filter((v) => o.only!.includes(v.transport)) : all;
}

/** Runs the proxy versions in front of the shared nginx hello upstream. */
export async function runProxies(lab: Lab, o: {
  workload: string; duration: number; warmup: number; transports: readonly string[]; cpus: { server: number; client: number }; nice: number;
  load: LoadFn; tls?: TlsFiles; dir?: string; point?: string; progress: (l: string) => void;
}): Promise<ResultRow[]> {
  const point = o.point ?? HTTP_POINT;
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), `strata-bench-${o.workload}-`));
  const ownDir = o.dir === undefined;
  const versions = proxyVersions(lab, dir, { cpu: o.cpus.server, nice: o.nice, ...(o.tls ? { tls: o.tls } : {}), only: o.transports });
  let upstream: StartedServer | undefined;
  try {
    const why = httpUnavailable() ?? nginxUnavailable();
    if (why) return versions.map((v) => ({ workload: o.workload, transport: v.transport, point, metrics: {}, unavailable: why }));
    o.progress(`${o.workload}: starting the upstream: nginx (1 worker) with the hello body on ${UPSTREAM.addr}:${UPSTREAM.port} in ${lab.serverNs}`);
    const ud = join(dir, 'nginx-upstream');
    try {
      upstream = await startNginx(lab, ud, writeUpstreamConf(ud, UPSTREAM), UPSTREAM, { nice: o.nice });
    } catch (e) {
      const msg = `upstream failed: ${(e as Error).message.split('\n')[0]}`;
      return versions.map((v) => ({ workload: o.workload, transport: v.transport, point, metrics: {}, unavailable: msg }));
    }
    const rows = await runHttpVersions(versions, o.load, { workload: o.workload, point, duration: o.duration, warmup: o.warmup, progress: o.progress });
    for (const r of rows) if (!r.unavailable) r.note = `upstream nginx on ${UPSTREAM.addr}:${UPSTREAM.port} (its CPU not counted); ${r.note ?? ''}`;
    return rows;
  } finally {
    if (upstream) await upstream.stop();
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  }
}

export function proxyTargets(rows: readonly ResultRow[], workload = 'proxy', point = HTTP_POINT): string[] {
  const x = medianOf(rows, workload, 'afxdp', point, 'req/s');
  const n = medianOf(rows, workload, 'nginx', point, 'req/s');
  const label = workload === 'mtls' ? 'with mTLS, ' : '';
  if (Number.isFinite(x) && Number.isFinite(n) && n > 0) {
    return [`- ${label}our proxy on AF_XDP vs nginx (1 worker) as a proxy: ${(x / n).toFixed(2)}x (target >= 1x): ${verdict(x >= n)}`];
  }
  return [`- ${label}our proxy on AF_XDP vs nginx as a proxy: not measured here`];
}

export const proxyWorkload: Workload = {
  name: 'proxy',
  summary: 'reverse proxy: strata proxy on the kernel, TAP and AF_XDP vs nginx (1 worker), wrk -c50 keep-alive GETs to one kernel upstream',
  transports: PROXY_TRANSPORTS,
  async run(ctx) {
    resetInterrupt();
    const cpus = benchCpus();
    const nice = numOption(ctx, 'nice', -10, -20, 19);
    const connections = numOption(ctx, 'connections', 50, 1, 10000);
    return runProxies(ctx.lab, {
      workload: 'proxy', duration: ctx.duration, warmup: warmupFor(ctx), transports: pickTransports(ctx, PROXY_TRANSPORTS, 'proxy'),
      cpus, nice, load: wrkLoad(ctx.lab, { connections, cpu: cpus.client, nice }), progress: ctx.progress,
    });
  },
  targets: (rows) => proxyTargets(rows, 'proxy'),
  interrupt: interruptAll,
};
