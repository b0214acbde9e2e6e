// strata proxy --config F [--check]
//
// --check validates the file (TLS files included) and prints every issue as
// file:line:col: field: message, starting nothing. Otherwise the proxy starts
// one HTTP server per listener on the listener's transport, with routes,
// clusters, TLS and L7 policy from the file, prints one line
// `listening <addr>:<port> transport=<t>` per listener once all are ready, and
// runs until SIGINT/SIGTERM (graceful close). On the lab's server side by
// default when the lab is up.
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { createWriteStream, type WriteStream } from 'node:fs';
import { parseArgs, UsageError } from './args.js';
import { placement, defaultHost, reexecIn, untilSignal, prepareLabForAfxdp } from './netns-exec.js';
import { UnavailableError } from '../util/errors.js';
import type { L7Socket, L7Transport, TransportKind } from '../l7/transport/index.js';

const USAGE = 'usage: strata proxy --config FILE [--check]';

export async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { booleans: ['check', 'help'], strings: ['config'] });
  if (a.flags.has('help')) { process.stdout.write(`${USAGE}\n`); return 0; }
  const file = a.values.get('config');
  if (file === undefined) throw new UsageError(`--config is required\n${USAGE}`);
  if (a.positionals.length > 0) throw new UsageError(`unexpected argument '${a.positionals[0]}'\n${USAGE}`);
  const config = await import('../config/index.js');

  if (a.flags.has('check')) {
    const r = config.checkConfig(file);
    if (r.ok) { process.stdout.write(`${file}: ok\n`); return 0; }
    for (const l of r.lines) process.stderr.write(`${l}\n`);
    process.stderr.write(`${file}: ${r.errors.length} error${r.errors.length === 1 ? '' : 's'}\n`);
    return 1;
  }

  const check = config.checkConfig(file);
  if (!check.ok) {
    for (const l of check.lines) process.stderr.write(`${l}\n`);
    return 1;
  }
  const where = placement();
  if (where.reexec && where.lab !== null) return reexecIn(where.lab.serverNs);

  const cfg = config.loadConfig(file);
  const { openTransport } = await import('../l7/transport/index.js');
  const { HttpServer } = await import('../l7/server/index.js');
  const { Proxy, routesFor, clusterFromConfig } = await import('../l7/proxy/index.js');

  const transports = new Map<TransportKind, L7Transport>();
  const transportFor = async (kind: TransportKind): Promise<L7Transport> => {
    let t = transports.get(kind);
    if (t === undefined) {
      const lab = where.lab;
      if (kind === 'afxdp' && lab !== null) prepareLabForAfxdp(lab);
      // A stack transport's address is the listener's when it names one, else the lab's target.
      const l = cfg.listeners.find((x) => x.transport === kind && x.address !== '0.0.0.0');
      t = await openTransport(kind, kind === 'kernel' ? {} : {
        addr: l?.address ?? defaultHost(kind, lab),
        ...(lab !== null ? { netns: lab.serverNs, pinDir: lab.pinDir, ...(kind === 'tap' ? { gateway: lab.tapKernelAddr } : {}) } : {}),
      });
      transports.set(kind, t);
    }
    return t;
  };

  const closers: (() => Promise<void> | void)[] = [];
  const closeAll = async (): Promise<void> => { for (const c of closers.reverse()) await c(); for (const t of transports.values()) await t.close(); };
  try {
    const tlsNeeded = cfg.listeners.some((l) => l.tls !== null) || cfg.clusters.some((c) => c.tls !== null);
    const tlsCtx = tlsNeeded ? config.createTlsContexts(cfg) : new Map();
    closers.push(() => { for (const m of tlsCtx.values()) m.close(); });
    const mtls = tlsNeeded ? await import('../l7/tls/index.js') : null;

    const clusters = [];
    for (const c of cfg.clusters) {
      clusters.push(await clusterFromConfig(c, {
        transportFor,
        wrapFor: (tlsName, expect) => (s: L7Socket) => new Promise<L7Socket>((resolve, reject) => {
          const t = mtls!.wrapClient(s as Duplex, tlsCtx.get(tlsName)!, expect !== null ? { expectServer: expect } : {});
          t.once('secureConnect', () => resolve(t as unknown as L7Socket));
          t.once('error', reject);
        }),
      }));
    }
    const policies = config.configPolicies(cfg);
    const access = accessLog(cfg.logging.accessLog);
    if (access) closers.push(() => access.close());
    const ready: string[] = [];

    for (const l of cfg.listeners) {
      const lp = policies.forListener(l.name);
      const policy = lp.selected ? (req: import('../l7/server/index.js').ServerRequest) => {
        const sock = req.socket as unknown as TLSSocket;
        const id = mtls !== null && l.tls !== null ? mtls.peerIdentity(sock) : null;
        const v = lp.evaluate({ port: l.port, srcAddr: req.remoteAddress, identity: id, method: req.method, path: req.url, host: req.header('host') ?? '', header: (n) => req.headers[n] });
        if (!v.allowed && access) access.write({ verdict: 'deny', listener: l.name, policy: v.policy, rule: v.rule, reason: v.reason, method: req.method, path: req.url, client: req.remoteAddress, identity: id?.spiffeId ?? null });
        return v.allowed;
      } : null;
      const proxy = new Proxy({
        routes: routesFor(cfg, l.name), clusters, scheme: l.tls !== null ? 'https' : 'http', listenerPort: l.port, policy,
        ...(access ? { onLog: (e: object) => access.write({ listener: l.name, ...e }) } : {}),
      });
      const server = new HttpServer(proxy.handler, { headersTimeoutMs: l.timeouts.headerMs, keepAliveTimeoutMs: l.timeouts.idleMs, requestTimeoutMs: l.timeouts.requestMs, maxHeaderSize: l.maxHeaderBytes, ...(l.maxConnections > 0 ? { maxConnections: l.maxConnections } : {}) });
      const transport = await transportFor(l.transport);
      const host = l.address === '0.0.0.0' && l.transport !== 'kernel' ? defaultHost(l.transport, where.lab) : l.address;
      let bound;
      if (l.tls !== null) {
        const ctx = tlsCtx.get(l.tls)!;
        bound = await transport.listen(l.port, host, (s) => {
          const t = mtls!.wrapServer(s as Duplex, ctx);
          t.on('error', () => t.destroy());
          server.accept(t as unknown as L7Socket);
        });
        closers.push(async () => { await bound!.close(); await server.close(); });
      } else {
        bound = await server.listen(transport, l.port, host);
        closers.push(() => server.close());
      }
      closers.push(() => proxy.close());
      ready.push(`listening ${bound.host}:${bound.port} transport=${l.transport}`);
    }
    for (const line of ready) process.stdout.write(`${line}\n`);
  } catch (e) {
    await closeAll();
    if (e instanceof UnavailableError) { process.stderr.write(`strata proxy: ${e.message}\n`); return 3; }
    throw e;
  }
  await untilSignal();
  await closeAll();
  return 0;
}

/** Access and verdict log: JSON lines, batched per event-loop turn. */
function accessLog(cfg: { enabled: boolean; path: string }): { write(o: object): void; close(): void } | null {
  if (!cfg.enabled) return null;
  const out: NodeJS.WritableStream | WriteStream = cfg.path === 'stdout' ? process.stdout : cfg.path === 'stderr' ? process.stderr : createWriteStream(cfg.path, { flags: 'a' });
  let batch: string[] = [];
  let scheduled = false;
  const flush = (): void => { scheduled = false; if (batch.length > 0) { out.write(batch.join('')); batch = []; } };
  return {
    write(o: object) {
      batch.push(`${JSON.stringify({ time: new Date().toISOString(), ...o })}\n`);
      if (!scheduled) { scheduled = true; setImmediate(flush); }
    },
    close() { flush(); if (out !== process.stdout && out !== process.stderr) (out as WriteStream).end(); },
  };
}
