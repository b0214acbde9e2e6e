// strata flows: prints flow records from a running dataplane's admin listener,
// after `hubble observe`.
//
//   strata flows [--follow] [--filter k=v …] [--admin host:port] [--json|--cbor]
//                [--last N] [--count N]
//                [--from-ip A] [--to-ip A] [--from-port P] [--to-port P]
//                [--http-status S] [--http-method M] [--http-path P]
//                [--verdict V] [--identity ID] [--type l7|l4] [--transport T]
//
// Default output is one compact line per record (src/flows/format.ts);
// --json passes the JSON lines through, --cbor the CBOR sequence (bytes to
// stdout, for piping into a file or a decoder). Filters run on the server, so
// records nobody asked for never cross the socket. --count N exits after N
// records (Hubble's --first, for scripts and tests).
import * as http from 'node:http';
import { createInterface } from 'node:readline';
import { compileFilter } from '../flows/filter.js';
import { formatFlowLine } from '../flows/format.js';
import type { FlowRecord } from '../flows/record.js';
import { StrataError } from '../util/errors.js';
import { parseArgs, UsageError } from './args.js';

export const DEFAULT_ADMIN = '127.0.0.1:9901';

export class AdminUnreachableError extends StrataError {
  constructor(addr: string, reason: string) { super('ERR_STRATA_ADMIN_UNREACHABLE', `admin listener ${addr}: ${reason}`); }
}

/** Filter flags that map onto filter keys (hubble observe's names). */
const FILTER_FLAGS = ['from-ip', 'to-ip', 'from-port', 'to-port', 'http-status', 'http-method', 'http-path', 'verdict', 'identity', 'type', 'transport', 'protocol'] as const;

const USAGE = `usage: strata flows [--follow] [--filter k=v …] [--admin host:port] [--json|--cbor] [--last N] [--count N]
                    [--from-ip A] [--to-ip A] [--from-port P] [--to-port P] [--http-status S]
                    [--http-method M] [--http-path P] [--verdict V] [--identity ID] [--type l7|l4]
filters: method status path authority identity from-ip to-ip from-port to-port verdict type transport protocol uuid
`;

export function parseAdmin(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = i > 0 ? addr.slice(0, i).replace(/^\[|\]$/g, '') : '127.0.0.1';
  const port = Number(i >= 0 ? addr.slice(i + 1) : addr);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`--admin: expected host:port, got ${addr}`);
  return { host, port };
}

/** GET path on the admin listener; resolves with the response (status checked by the caller). */
export function adminGet(addr: string, path: string): Promise<http.IncomingMessage> {
  const { host, port } = parseAdmin(addr);
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, headers: { accept: '*/*' } }, resolve);
    req.once('error', (e: NodeJS.ErrnoException) => reject(new AdminUnreachableError(addr, e.code ?? e.message)));
  });
}

async function readAll(res: http.IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  for await (const c of res) parts.push(c as Buffer);
  return Buffer.concat(parts).toString('utf8');
}

export async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, {
    booleans: ['follow', 'f', 'json', 'cbor', 'help'],
    strings: ['admin', 'last', 'count', ...FILTER_FLAGS],
    lists: ['filter'],
  });
  if (a.flags.has('help')) { process.stdout.write(USAGE); return 0; }
  if (a.positionals.length > 0) throw new UsageError(`unexpected argument ${a.positionals[0]}\n${USAGE}`);
  if (a.flags.has('json') && a.flags.has('cbor')) throw new UsageError('--json and --cbor are exclusive');
  const terms = [...(a.listValues.get('filter') ?? [])];
  for (const f of FILTER_FLAGS) { const v = a.values.get(f); if (v !== undefined) terms.push(`${f}=${v}`); }
  // Reject a bad filter here, with the usage, before touching the network.
  const filter = compileFilter(terms);
  const admin = a.values.get('admin') ?? process.env['STRATA_ADMIN'] ?? DEFAULT_ADMIN;
  const follow = a.flags.has('follow') || a.flags.has('f');
  const count = a.values.has('count') ? Number(a.values.get('count')) : Infinity;
  if (!(count === Infinity || (Number.isInteger(count) && count > 0))) throw new UsageError('--count must be a positive integer');
  const cbor = a.flags.has('cbor');
  const q = new URLSearchParams();
  if (follow) q.set('follow', '1');
  if (a.values.has('last')) q.set('last', a.values.get('last')!);
  if (cbor) q.set('format', 'cbor');
  for (const t of filter.terms) q.append('filter', t);
  const res = await adminGet(admin, `/flows?${q.toString()}`);
  if (res.statusCode !== 200) {
    const body = (await readAll(res)).trim();
    process.stderr.write(`strata flows: admin answered ${res.statusCode}: ${body}\n`);
    return 1;
  }
  const stop = (): void => { res.destroy(); };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    if (cbor) {
      // Raw CBOR sequence to stdout; --count cannot split it without decoding.
      if (count !== Infinity) throw new UsageError('--count is not supported with --cbor');
      for await (const c of res) {
        if (!process.stdout.write(c as Buffer)) await new Promise((r) => process.stdout.once('drain', r));
      }
      return 0;
    }
    const json = a.flags.has('json');
    let n = 0;
    const rl = createInterface({ input: res, crlfDelay: Infinity });
    try {
      for await (const line of rl) {
        if (line === '') continue;
        let out: string;
        if (json) out = line;
        else {
          let r: FlowRecord;
          try { r = JSON.parse(line) as FlowRecord; } catch { process.stderr.write(`strata flows: bad record from admin: ${line.slice(0, 80)}\n`); continue; }
          out = formatFlowLine(r);
        }
        if (!process.stdout.write(`${out}\n`)) await new Promise((r) => process.stdout.once('drain', r));
        if (++n >= count) break;
      }
    } catch (e) {
      // The admin side closing a follow stream (or our own SIGINT) ends the command normally.
      if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET' && (e as NodeJS.ErrnoException).code !== 'ERR_STREAM_PREMATURE_CLOSE') throw e;
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    res.destroy();
  }
}
