// The server process of the tcp, http and mtls workloads: one of the server
// versions under test, run by the orchestrator inside the lab's server
// namespace (nsenter, so the bpffs pins stay visible) and pinned to a CPU.
//
//   tcp-server --proto tcp  --app discard|echo --transport kernel|tap|afxdp --addr A --port P
//   tcp-server --proto http --app hello --impl strata|node --transport kernel|tap|afxdp --addr A --port P
//              [--tls --cert F --key F --ca F]
//   common: [--pin-dir DIR] (afxdp: where the XDP program pins its maps) [--gateway G] (tap)
//           [--mode event|busy] (tap, afxdp: busy spins on the stack's poll instead of waiting for readiness)
//
// Busy mode is application-level busy polling, as DPDK or a spinning AF_XDP
// loop does it: the process polls the stack (and so the link's rings) on
// every event-loop turn, never sleeping, so a packet is picked up as soon as
// the kernel puts it in the ring instead of after a wake-up. It costs a
// whole core by design.
//
// strata runs what `strata serve` runs: the same apps (src/apps), the same
// HttpServer, the same transports (src/l7/transport: node:net, or the
// userspace TCP on TAP or AF_XDP, which attaches strata's XDP program and
// steers the address itself). node is the baseline: node:net for raw TCP,
// node:http (or node:https with a required client certificate) for HTTP.
//
// Protocol with the orchestrator: "READY" on stdout once accepting; on
// SIGTERM/SIGINT, one JSON line of counters, then exit 0.
import net from 'node:net';
import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { parseArgs, UsageError } from '../cli/args.js';
import { openTransport, isTransportKind, StackTransport, type L7Socket, type L7Transport } from '../l7/transport/index.js';
import { HttpServer } from '../l7/server/index.js';
import { helloApp, HELLO_BODY, tcpDiscard, tcpEcho } from '../apps/index.js';

async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { booleans: ['tls'], strings: ['proto', 'app', 'impl', 'transport', 'addr', 'port', 'pin-dir', 'gateway', 'cert', 'key', 'ca', 'mode'] });
  const proto = a.values.get('proto') ?? 'tcp';
  const app = a.values.get('app') ?? (proto === 'tcp' ? 'discard' : 'hello');
  const impl = a.values.get('impl') ?? 'strata';
  const kind = a.values.get('transport') ?? 'kernel';
  const addr = a.values.get('addr');
  const port = Number(a.values.get('port') ?? 0);
  if (!isTransportKind(kind)) throw new UsageError(`--transport must be kernel, tap or afxdp, not '${kind}'`);
  if (!addr) throw new UsageError('--addr is required');
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new UsageError('--port is required');
  if (proto !== 'tcp' && proto !== 'http') throw new UsageError('--proto must be tcp or http');
  if (proto === 'tcp' && app !== 'echo' && app !== 'discard') throw new UsageError('--app for tcp must be echo or discard');
  if (proto === 'http' && app !== 'hello') throw new UsageError('--app for http must be hello');
  if (impl !== 'strata' && impl !== 'node') throw new UsageError('--impl must be strata or node');
  if (impl === 'node' && kind !== 'kernel') throw new UsageError('--impl node runs on the kernel transport only');
  const mode = a.values.get('mode') ?? 'event';
  if (mode !== 'event' && mode !== 'busy') throw new UsageError('--mode must be event or busy');
  if (mode === 'busy' && kind === 'kernel') throw new UsageError('--mode busy applies to the stack transports (tap, afxdp)');
  const tlsOn = a.flags.has('tls');
  if (tlsOn && (!a.values.get('cert') || !a.values.get('key') || !a.values.get('ca'))) throw new UsageError('--tls needs --cert, --key and --ca');

  let connections = 0;
  let stop: () => Promise<void>;
  let transport: L7Transport | null = null;

  if (impl === 'node') {
    if (proto === 'tcp') {
      const onConn = app === 'echo' ? tcpEcho : tcpDiscard;
      const srv = net.createServer((s) => { connections++; s.setNoDelay(true); onConn(s as unknown as L7Socket); });
      await new Promise<void>((r, j) => { srv.once('error', j); srv.listen(port, addr, 1024, () => r()); });
      stop = () => new Promise<void>((r) => { srv.close(() => r()); setTimeout(r, 1000).unref(); });
    } else {
      const handler = (_req: http.IncomingMessage, res: http.ServerResponse): void => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(HELLO_BODY) });
        res.end(HELLO_BODY);
      };
      const srv = tlsOn
        ? https.createServer({ cert: readFileSync(a.values.get('cert')!), key: readFileSync(a.values.get('key')!), ca: readFileSync(a.values.get('ca')!), requestCert: true, rejectUnauthorized: true }, handler)
        : http.createServer(handler);
      srv.keepAliveTimeout = 60_000;
      srv.on('connection', () => { connections++; });
      await new Promise<void>((r, j) => { srv.once('error', j); srv.listen(port, addr, 1024, () => r()); });
      stop = () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); });
    }
  } else {
    transport = await openTransport(kind, kind === 'kernel' ? {} : {
      addr,
      ...(a.values.get('pin-dir') ? { pinDir: a.values.get('pin-dir')! } : {}),
      ...(a.values.get('gateway') ? { gateway: a.values.get('gateway')! } : {}),
    });
    if (proto === 'tcp') {
      const onConn = app === 'echo' ? tcpEcho : tcpDiscard;
      const sockets = new Set<L7Socket>();
      const l = await transport.listen(port, addr, (s) => {
        connections++;
        sockets.add(s);
        s.once('close', () => sockets.delete(s));
        onConn(s);
      });
      stop = async () => { await l.close(); for (const s of sockets) s.destroy(); };
    } else {
      const server = new HttpServer(helloApp);
      if (tlsOn) {
        const { TlsContextManager, wrapServer } = await import('../l7/tls/index.js');
        const ctx = new TlsContextManager({ certFile: a.values.get('cert')!, keyFile: a.values.get('key')!, caFile: a.values.get('ca')! });
        const l = await transport.listen(port, addr, (s) => {
          connections++;
          const t = wrapServer(s as Duplex, ctx);
          t.on('error', () => t.destroy());
          server.accept(t as unknown as L7Socket);
        });
        stop = async () => { await l.close(); await server.close(); };
      } else {
        const l = await transport.listen(port, addr, (s) => { connections++; server.accept(s); });
        stop = async () => { await l.close(); await server.close(); };
      }
    }
  }
  let spins = 0;
  let spinning = false;
  if (mode === 'busy' && transport instanceof StackTransport) {
    const stack = transport.stack;
    spinning = true;
    const spin = (): void => {
      if (!spinning) return;
      spins++;
      stack.poll(stack.clock.now());
      setImmediate(spin);
    };
    setImmediate(spin);
  }
  process.stdout.write('READY\n');
  const sig = await new Promise<NodeJS.Signals>((resolve) => {
    const on = (s: NodeJS.Signals): void => { process.off('SIGINT', on); process.off('SIGTERM', on); resolve(s); };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
  spinning = false;
  const stats: Record<string, unknown> = { proto, app, impl, transport: kind, mode, connections, spins, signal: sig };
  if (transport instanceof StackTransport) {
    stats.stack = transport.stack.stats.snapshot();
    stats.tcp = transport.tcp.snapshot();
    const link = transport.link as unknown as { xskStats?: () => unknown };
    if (typeof link.xskStats === 'function') stats.xsk = link.xskStats();
  }
  // Bounded: a stuck close must not keep the orchestrator waiting.
  await Promise.race([stop(), new Promise((r) => setTimeout(r, 2000).unref())]);
  if (transport !== null) await transport.close();
  process.stdout.write(`${JSON.stringify(stats)}\n`);
  return 0;
}

main(process.argv.slice(2)).then((code) => { process.exit(code); }, (e: unknown) => {
  process.stderr.write(`tcp-server: ${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(e instanceof UsageError ? 2 : 1);
});
