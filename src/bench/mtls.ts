// The mtls workload of `strata bench`: the http and proxy measurements again
// with mutual TLS (TLS 1.3, a client certificate required and verified
// against the dev CA from `strata certs dev`).
//
// wrk cannot present a client certificate, so every version here is driven
// by the same C client, bench/c/tcptls.c (OpenSSL, one thread, N keep-alive
// connections with one request in flight each, like `wrk -t1 -cN`). Its own
// CPU use is in every row's note: if it reads near 100 % of a core, the
// client was the limit and the row says so.
//
//   point "hello server": node:https (kernel) | strata HttpServer on kernel, TAP, AF_XDP
//   point "proxy":        strata proxy on kernel, TAP, AF_XDP | nginx (1 worker), all TLS-terminating
//                         in front of the plain-HTTP nginx hello upstream on loopback
//   point "proxy, upstream across the veth": the same with the upstream in the client
//                         namespace, reached over each proxy's own transport (see proxy.ts)
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab } from '../lab/topo.js';
import { repoRoot } from '../link/native.js';
import type { ResultRow } from '../report/results.js';
import type { Workload } from './workload.js';
import { benchCpus, checkInterrupted, interruptAll, lastJson, numOption, pickTransports, pinned, resetInterrupt, runClient, unavailableRow } from './tcp-measure.js';
import { helloVersions, httpTargets, runHttpVersions, warmupFor, type LoadFn, type TlsFiles } from './http.js';
import { PROXY_TRANSPORTS, placementsOption, pointFor, proxyTargets, runProxies } from './proxy.js';

export const tcptlsPath = join(repoRoot, 'bench', 'c', 'tcptls.bin');
export const MTLS_TRANSPORTS = ['node', 'kernel', 'tap', 'afxdp', 'nginx'] as const;
export const MTLS_POINTS = { server: 'hello server, keep-alive GET', proxy: 'proxy, keep-alive GET' } as const;

interface TcptlsOut {
  requests: number; non2xx: number; errors: number; handshake_errors: number; reconnects: number; duration_s: number;
  rps: number; p50_us: number; p90_us: number; p99_us: number; max_us: number; conns: number; tls: string;
}

/** The dev PKI: server and client SVIDs from one CA (what `strata certs dev --out DIR` writes). */
export async function devCerts(dir: string): Promise<{ server: TlsFiles; client: TlsFiles }> {
  const { main } = await import('../cli/certs.js');
  let log = '';
  const sink = { write: (s: string) => { log += s; return true; } };
  const code = await main(['dev', '--out', dir, '--force'], sink as never, sink as never);
  if (code !== 0) throw new Error(`strata certs dev failed (${code}): ${log.trim()}`);
  const files = (who: string): TlsFiles => ({ cert: join(dir, who, 'cert.pem'), key: join(dir, who, 'key.pem'), ca: join(dir, 'ca', 'bundle.pem') });
  return { server: files('server'), client: files('client') };
}

/** The tcptls client as a LoadFn (GO/END markers: the server's CPU is sampled exactly over the measured window). */
export function tcptlsLoad(lab: Lab, o: { conns: number; cpu: number; nice: number; client: TlsFiles }): LoadFn {
  return async (url, duration, server) => {
    const u = new URL(url);
    const argv = [...pinned(o.cpu, o.nice), ...lab.client([tcptlsPath, '--dst', u.hostname, '--port', u.port, '--duration', String(duration),
      '--conns', String(o.conns), '--cert', o.client.cert, '--key', o.client.key, '--ca', o.client.ca, '--timeout', '15'])];
    const run = await runClient(argv, server, true, (duration + 45) * 1000);
    const j = lastJson<TcptlsOut>(run.out);
    if (!j) throw new Error(`tcptls failed (${run.code}): ${(run.err || run.out).trim().slice(-300)}`);
    return {
      requests: j.requests, seconds: j.duration_s, rps: j.rps, p50: j.p50_us, p99: j.p99_us, errors: j.errors + j.non2xx, run,
      detail: `tcptls (OpenSSL, ${j.tls}, client certificate) -c${j.conns}: ${j.requests} requests in ${j.duration_s.toFixed(2)} s; `
        + `${j.errors} connection errors, ${j.non2xx} non-2xx, ${j.reconnects} reconnects`,
    };
  };
}

function mtlsUnavailable(): string | null {
  if (!existsSync(tcptlsPath)) return `mTLS load generator not built (${tcptlsPath}; needs libssl-dev; run \`make -C bench/c\`)`;
  return null;
}

export const mtlsWorkload: Workload = {
  name: 'mtls',
  summary: 'mTLS: keep-alive HTTPS GETs with a client certificate (C/OpenSSL client) against node:https and strata\'s server, and through strata proxy and nginx',
  transports: MTLS_TRANSPORTS,
  async run(ctx) {
    resetInterrupt();
    const cpus = benchCpus();
    const nice = numOption(ctx, 'nice', -10, -20, 19);
    const conns = numOption(ctx, 'connections', 50, 1, 4096);
    const transports = pickTransports(ctx, MTLS_TRANSPORTS, 'mtls');
    const serverTs = transports.filter((t) => t !== 'nginx');
    const proxyTs = transports.filter((t) => (PROXY_TRANSPORTS as readonly string[]).includes(t));
    const why = mtlsUnavailable();
    if (why) {
      ctx.progress(`mtls: unavailable: ${why}`);
      return [
        ...serverTs.map((t) => unavailableRow('mtls', t, MTLS_POINTS.server, why)),
        ...placementsOption(ctx).flatMap((pl) => proxyTs.map((t) => unavailableRow('mtls', t, pointFor(pl, MTLS_POINTS.proxy), why))),
      ];
    }
    const dir = mkdtempSync(join(tmpdir(), 'strata-bench-mtls-'));
    try {
      const certs = await devCerts(join(dir, 'certs'));
      const load = tcptlsLoad(ctx.lab, { conns, cpu: cpus.client, nice, client: certs.client });
      const opts = { workload: 'mtls', duration: ctx.duration, warmup: warmupFor(ctx), progress: ctx.progress };
      const rows: ResultRow[] = [];
      rows.push(...await runHttpVersions(helloVersions(ctx.lab, { cpu: cpus.server, nice, tls: certs.server, only: serverTs }), load, { ...opts, point: MTLS_POINTS.server }));
      checkInterrupted();
      rows.push(...await runProxies(ctx.lab, { ...opts, transports: proxyTs, cpus, nice, load, tls: certs.server, dir, point: MTLS_POINTS.proxy, placements: placementsOption(ctx) }));
      return rows;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
  targets: (rows) => [...httpTargets(rows, 'mtls', MTLS_POINTS.server), ...proxyTargets(rows, 'mtls', MTLS_POINTS.proxy)],
  interrupt: interruptAll,
};
