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
// hello body (chosen because it is faster than any proxy in front of it, so
// the proxy is what is measured), pinned with wrk to the client's CPU so the
// proxy under test has its core to itself. It stands in one of two places,
// each a point of its own:
//
//   local  127.0.0.1:8081 in the server namespace, as a sidecar's app is:
//          every proxy reaches it over the kernel's loopback, so a strata
//          proxy's upstream leg is kernel TCP whatever its listener runs on.
//   wire   10.200.0.1:8081 in the client namespace, across the veth, as a
//          node proxy's backends are: each proxy reaches it over its own
//          transport (the strata cluster names the listener's transport;
//          nginx uses the kernel), so both legs of the AF_XDP proxy bypass
//          the kernel and both legs of nginx go through it.
//
// Each proxy reaches the upstream with pooled keep-alive connections. The
// proxy's CPU is its own process (nginx: master + worker); the upstream's
// CPU is counted for nobody. With mTLS (the mtls workload) the listener
// requires a client certificate from the dev CA.
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
import { UsageError } from '../cli/args.js';

export const PROXY_TRANSPORTS = ['kernel', 'tap', 'afxdp', 'nginx'] as const;
/** The local placement's upstream address (in the server namespace). */
export const UPSTREAM = { addr: '127.0.0.1', port: 8081 } as const;

/** Where the upstream stands (see the top of this file). */
export type UpstreamPlacement = 'local' | 'wire';
export const PLACEMENTS: readonly UpstreamPlacement[] = ['local', 'wire'];
/** The point each placement's rows are measured at; local keeps the http workload's point name. */
export const PROXY_POINTS: Record<UpstreamPlacement, string> = { local: HTTP_POINT, wire: `${HTTP_POINT}, upstream across the veth` };

/** The upstream's address for a placement in this lab. */
export function upstreamFor(lab: Lab, placement: UpstreamPlacement): { addr: string; port: number } {
  return placement === 'local' ? { ...UPSTREAM } : { addr: lab.clientAddr, port: UPSTREAM.port };
}

/** Why `strata proxy` cannot run here, or null. */
function strataProxyUnavailable(): string | null {
  if (!existsSync(new URL('../cli/proxy.js', import.meta.url)) && !existsSync(new URL('../cli/proxy.ts', import.meta.url))) return '`strata proxy` is not part of this build';
  return null;
}

/**
 * The `strata proxy` config for one listener in front of the upstream
 * (default: the local placement's, reached over the kernel). With
 * upstream.transport the cluster names it: the wire placement gives the
 * listener's own transport, so both legs run on it.
 */
export function strataProxyConfig(l: { addr: string; port: number; transport: 'kernel' | 'tap' | 'afxdp' }, tls?: TlsFiles,
  upstream: { addr: string; port: number; transport?: 'kernel' | 'tap' | 'afxdp' } = UPSTREAM): string {
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
    ...(upstream.transport !== undefined ? [`    transport: ${upstream.transport}`] : []),
    `    endpoints: [${upstream.addr}:${upstream.port}]`,
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
async function startStrataProxy(lab: Lab, dir: string, transport: 'kernel' | 'tap' | 'afxdp', addr: string,
  o: { cpu: number; nice: number; tls?: TlsFiles; placement: UpstreamPlacement }): Promise<StartedServer> {
  const cfg = join(dir, `proxy-${transport}-${o.placement}.yaml`);
  const up = upstreamFor(lab, o.placement);
  writeFileSync(cfg, strataProxyConfig({ addr, port: HTTP_PORT, transport }, o.tls, o.placement === 'wire' ? { ...up, transport } : up));
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

/** The proxy versions for one upstream placement; with tls, every listener requires a client certificate. */
export function proxyVersions(lab: Lab, dir: string, o: { cpu: number; nice: number; tls?: TlsFiles; only?: readonly string[]; placement?: UpstreamPlacement }): HttpVersion[] {
  const scheme = o.tls ? 'https' : 'http';
  const placement = o.placement ?? 'local';
  const over = (t: 'kernel' | 'tap' | 'afxdp'): string => (t === 'kernel' ? 'net.Socket' : `the userspace TCP over ${t === 'tap' ? 'TAP' : 'AF_XDP'}`);
  const strata = (transport: 'kernel' | 'tap' | 'afxdp', addr: string): HttpVersion => ({
    transport,
    label: `strata proxy, listener ${placement === 'wire' ? 'and upstream connections ' : ''}on ${over(transport)}${o.tls ? ', mTLS' : ''}`,
    url: `${scheme}://${addr}:${HTTP_PORT}/`,
    unavailable: () => httpUnavailable() ?? nginxUnavailable() ?? strataProxyUnavailable() ?? (transport === 'kernel' ? null : stackUnavailable(transport)),
    start: () => startStrataProxy(lab, dir, transport, addr, { ...o, placement }),
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
        const d = join(dir, `nginx-proxy-${placement}`);
        const listen = { addr: lab.kernelAddr, port: HTTP_PORT };
        const conf = writeProxyConf(d, { listen, upstream: upstreamFor(lab, placement), ...(o.tls ? { tls: o.tls } : {}) });
        return startNginx(lab, d, conf, listen, { cpu: o.cpu, nice: o.nice });
      },
    },
  ];
  return o.only ? all.filter((v) => o.only!.includes(v.transport)) : all;
}

/**
 * Runs the proxy versions in front of the shared nginx hello upstream, once
 * per placement asked for (default: the local one only). Each placement's
 * rows are at its own point; `point` overrides the local placement's name
 * (the mtls workload's) and the wire point appends its suffix to it.
 */
export async function runProxies(lab: Lab, o: {
  workload: string; duration: number; warmup: number; transports: readonly string[]; cpus: { server: number; client: number }; nice: number;
  load: LoadFn; tls?: TlsFiles; dir?: string; point?: string; placements?: readonly UpstreamPlacement[]; progress: (l: string) => void;
}): Promise<ResultRow[]> {
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), `strata-bench-${o.workload}-`));
  const ownDir = o.dir === undefined;
  const rows: ResultRow[] = [];
  try {
    for (const placement of o.placements ?? ['local']) rows.push(...await runPlacement(lab, dir, placement, o));
    return rows;
  } finally {
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  }
}

/** The point a placement's rows carry; base (the mtls workload's name) replaces the local one and takes the wire suffix. */
export function pointFor(placement: UpstreamPlacement, base: string | undefined): string {
  if (base === undefined) return PROXY_POINTS[placement];
  return placement === 'local' ? base : `${base}, upstream across the veth`;
}

async function runPlacement(lab: Lab, dir: string, placement: UpstreamPlacement, o: Parameters<typeof runProxies>[1]): Promise<ResultRow[]> {
  const point = pointFor(placement, o.point);
  const versions = proxyVersions(lab, dir, { cpu: o.cpus.server, nice: o.nice, ...(o.tls ? { tls: o.tls } : {}), only: o.transports, placement });
  const up = upstreamFor(lab, placement);
  const side = placement === 'local' ? 'server' : 'client';
  const ns = side === 'server' ? lab.serverNs : lab.clientNs;
  let upstream: StartedServer | undefined;
  try {
    const why = httpUnavailable() ?? nginxUnavailable();
    if (why) return versions.map((v) => ({ workload: o.workload, transport: v.transport, point, metrics: {}, unavailable: why }));
    o.progress(`${o.workload}: starting the upstream: nginx (1 worker) with the hello body on ${up.addr}:${up.port} in ${ns} (${placement})`);
    const ud = join(dir, `nginx-upstream-${placement}`);
    try {
      // Pinned with the load generator: the proxy under test keeps its core to itself.
      upstream = await startNginx(lab, ud, writeUpstreamConf(ud, up), up, { cpu: o.cpus.client, nice: o.nice, side });
    } catch (e) {
      const msg = `upstream failed: ${(e as Error).message.split('\n')[0]}`;
      return versions.map((v) => ({ workload: o.workload, transport: v.transport, point, metrics: {}, unavailable: msg }));
    }
    const rows = await runHttpVersions(versions, o.load, { workload: o.workload, point, duration: o.duration, warmup: o.warmup, progress: o.progress });
    const how = (t: string): string => (placement === 'local' ? 'over loopback' : t === 'nginx' ? 'over the veth (kernel TCP)' : `over the veth (${t === 'kernel' ? 'kernel TCP' : `the stack on ${t === 'tap' ? 'TAP' : 'AF_XDP'}`})`);
    for (const r of rows) if (!r.unavailable) r.note = `upstream nginx on ${up.addr}:${up.port} in ${ns}, reached ${how(r.transport)} (its CPU not counted); ${r.note ?? ''}`;
    return rows;
  } finally {
    if (upstream) await upstream.stop();
  }
}

/** Issue 4's proxy target, checked at every placement measured (the local point first). */
export function proxyTargets(rows: readonly ResultRow[], workload = 'proxy', point?: string): string[] {
  const label = workload === 'mtls' ? 'with mTLS, ' : '';
  const out: string[] = [];
  for (const placement of PLACEMENTS) {
    const p = pointFor(placement, point);
    if (!rows.some((r) => r.workload === workload && r.point === p)) continue;
    const x = medianOf(rows, workload, 'afxdp', p, 'req/s');
    const n = medianOf(rows, workload, 'nginx', p, 'req/s');
    const where = placement === 'local' ? 'upstream on loopback' : 'upstream across the veth';
    if (Number.isFinite(x) && Number.isFinite(n) && n > 0) {
      out.push(`- ${label}our proxy on AF_XDP vs nginx (1 worker) as a proxy, ${where}: ${(x / n).toFixed(2)}x (target >= 1x): ${verdict(x >= n)}`);
    } else {
      out.push(`- ${label}our proxy on AF_XDP vs nginx as a proxy, ${where}: not measured here`);
    }
  }
  return out.length > 0 ? out : [`- ${label}our proxy on AF_XDP vs nginx as a proxy: not measured here`];
}

/** --upstream local|wire|both (default both). */
export function placementsOption(ctx: { options: ReadonlyMap<string, string> }): UpstreamPlacement[] {
  const v = ctx.options.get('upstream') ?? 'both';
  if (v === 'both') return [...PLACEMENTS];
  if (v === 'local' || v === 'wire') return [v];
  throw new UsageError(`--upstream must be local, wire or both (got ${v})`);
}

export const proxyWorkload: Workload = {
  name: 'proxy',
  summary: 'reverse proxy: strata proxy on the kernel, TAP and AF_XDP vs nginx (1 worker), wrk -c50 keep-alive GETs to one kernel upstream on loopback and across the veth (--upstream local|wire|both)',
  transports: PROXY_TRANSPORTS,
  async run(ctx) {
    resetInterrupt();
    const cpus = benchCpus();
    const nice = numOption(ctx, 'nice', -10, -20, 19);
    const connections = numOption(ctx, 'connections', 50, 1, 10000);
    return runProxies(ctx.lab, {
      workload: 'proxy', duration: ctx.duration, warmup: warmupFor(ctx), transports: pickTransports(ctx, PROXY_TRANSPORTS, 'proxy'),
      cpus, nice, load: wrkLoad(ctx.lab, { connections, cpu: cpus.client, nice }), placements: placementsOption(ctx), progress: ctx.progress,
    });
  },
  targets: (rows) => proxyTargets(rows, 'proxy'),
  interrupt: interruptAll,
};
