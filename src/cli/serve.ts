// strata serve --transport kernel|tap|afxdp --app hello|echo [--port N] [--host ADDR]
//              [--tls --cert F --key F --ca F]
// strata serve --proto tcp --app echo|discard [--transport …] [--port N] [--host ADDR]
//
// Prints exactly one line, `listening <addr>:<port> transport=<t>`, once
// ready; runs until SIGINT/SIGTERM, then closes gracefully. On the lab's
// server side by default when the lab is up.
import type { Duplex } from 'node:stream';
import { parseArgs, UsageError } from './args.js';
import { labNotice } from './lab-notice.js';
import { placement, defaultHost, reexecIn, untilSignal, prepareLabForAfxdp } from './netns-exec.js';
import { openTransport, isTransportKind, type L7Socket, type L7Transport } from '../l7/transport/index.js';
import { HttpServer, type Handler } from '../l7/server/index.js';
import { helloApp, echoApp, tcpEcho, tcpDiscard } from '../apps/index.js';
import { UnavailableError } from '../util/errors.js';

const USAGE = 'usage: strata serve [--transport kernel|tap|afxdp] [--proto http|tcp] --app hello|echo|discard [--port N] [--host ADDR] [--tls --cert F --key F --ca F]';

export async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { booleans: ['tls', 'help'], strings: ['transport', 'proto', 'app', 'port', 'host', 'cert', 'key', 'ca'] });
  if (a.flags.has('help')) { process.stdout.write(`${USAGE}\n`); return 0; }
  if (a.positionals.length > 0) throw new UsageError(`unexpected argument '${a.positionals[0]}'\n${USAGE}`);
  const kind = a.values.get('transport') ?? 'kernel';
  if (!isTransportKind(kind)) throw new UsageError(`--transport must be kernel, tap or afxdp, not '${kind}'`);
  const proto = a.values.get('proto') ?? 'http';
  if (proto !== 'http' && proto !== 'tcp') throw new UsageError(`--proto must be http or tcp, not '${proto}'`);
  const app = a.values.get('app') ?? (proto === 'tcp' ? 'echo' : 'hello');
  const apps = proto === 'http' ? ['hello', 'echo'] : ['echo', 'discard'];
  if (!apps.includes(app)) throw new UsageError(`--app for --proto ${proto} must be ${apps.join(' or ')}, not '${app}'`);
  const port = a.values.has('port') ? Number(a.values.get('port')) : 8080;
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`bad --port ${a.values.get('port')}`);
  const tlsOn = a.flags.has('tls');
  if (tlsOn && (!a.values.has('cert') || !a.values.has('key') || !a.values.has('ca'))) throw new UsageError('--tls needs --cert, --key and --ca');
  if (tlsOn && proto === 'tcp') throw new UsageError('--tls applies to --proto http');

  const where = placement();
  const notice = labNotice(where);
  if (notice !== null) process.stderr.write(`strata serve: ${notice}\n`);
  if (where.reexec && where.lab !== null) return reexecIn(where.lab.serverNs);
  const host = a.values.get('host') ?? defaultHost(kind, where.lab);

  if (kind === 'afxdp' && where.lab !== null) prepareLabForAfxdp(where.lab);
  let transport: L7Transport;
  try {
    transport = await openTransport(kind, kind === 'kernel' ? {} : {
      addr: host,
      ...(where.lab !== null ? { netns: where.lab.serverNs, pinDir: where.lab.pinDir, gateway: kind === 'tap' ? where.lab.tapKernelAddr : undefined } : {}),
    });
  } catch (e) {
    if (e instanceof UnavailableError) { process.stderr.write(`strata serve: ${e.message}\n`); return 3; }
    throw e;
  }

  let wrap: ((s: L7Socket) => L7Socket) | null = null;
  if (tlsOn) {
    const { TlsContextManager, wrapServer } = await import('../l7/tls/index.js');
    const ctx = new TlsContextManager({ certFile: a.values.get('cert')!, keyFile: a.values.get('key')!, caFile: a.values.get('ca')!, watch: true });
    wrap = (s) => {
      const t = wrapServer(s as Duplex, ctx);
      t.on('error', () => t.destroy());
      return t as unknown as L7Socket;
    };
  }

  let stop: () => Promise<void>;
  let bound: { host: string; port: number };
  if (proto === 'tcp') {
    const onConn = app === 'echo' ? tcpEcho : tcpDiscard;
    const sockets = new Set<L7Socket>();
    const l = await transport.listen(port, host, (s) => {
      sockets.add(s);
      s.once('close', () => sockets.delete(s));
      onConn(s);
    });
    bound = l;
    stop = async () => { await l.close(); for (const s of sockets) s.end(); };
  } else {
    const handler: Handler = app === 'hello' ? helloApp : echoApp;
    const server = new HttpServer(handler);
    if (wrap !== null) {
      const w = wrap;
      const l = await transport.listen(port, host, (s) => server.accept(w(s)));
      bound = l;
      stop = async () => { await l.close(); await server.close(); };
    } else {
      bound = await server.listen(transport, port, host);
      stop = () => server.close();
    }
  }
  // Handlers first: a supervisor may signal the moment it reads the line.
  const signalled = untilSignal();
  process.stdout.write(`listening ${bound.host}:${bound.port} transport=${kind}\n`);
  await signalled;
  await stop();
  await transport.close();
  return 0;
}
