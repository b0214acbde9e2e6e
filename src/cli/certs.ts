// `strata certs`: a development PKI for SPIFFE mTLS.
//
//   strata certs ca   --out DIR [--trust-domain TD] [--days N] [--key-type ec|rsa] [--force]
//   strata certs svid --ca DIR --spiffe-id ID --out DIR [--dns NAME]… [--ip ADDR]… [--days N] [--key-type ec|rsa] [--force]
//   strata certs dev  --out DIR [--trust-domain TD] [--dns NAME]… [--ip ADDR]… [--force]
//
// Files: a CA directory holds cert.pem, key.pem and bundle.pem (the trust
// bundle, the same certificate); an SVID directory holds cert.pem (leaf),
// key.pem, chain.pem (leaf + CA) and bundle.pem (CA). Keys are written with
// mode 0600. `dev` writes DIR/ca, DIR/server and DIR/client, with SPIFFE IDs
// spiffe://TD/ns/default/sa/server and …/sa/client; the server SVID also
// carries localhost, 127.0.0.1, ::1 and the lab's addresses as DNS/IP SANs.
// Existing files are not overwritten without --force.
import { parseArgs } from 'node:util';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCa, issueSvid, loadCa, type KeyType } from '../l7/tls/pki.js';
import { StrataError } from '../util/errors.js';

const USAGE = `usage:
  strata certs ca   --out DIR [--trust-domain example.org] [--days 365] [--key-type ec|rsa] [--force]
  strata certs svid --ca DIR --spiffe-id spiffe://TD/PATH --out DIR [--dns NAME]... [--ip ADDR]... [--days 30] [--key-type ec|rsa] [--force]
  strata certs dev  --out DIR [--trust-domain example.org] [--dns NAME]... [--ip ADDR]... [--days 30] [--force]
`;

/** SANs the dev server SVID carries so it works on loopback and in the lab (src/lab/topo.ts) unchanged. */
const DEV_SERVER_DNS = ['localhost'];
const DEV_SERVER_IPS = ['127.0.0.1', '::1', '10.200.0.2', '10.200.0.3', '10.201.0.2'];

class UsageError extends StrataError {
  constructor(message: string) { super('ERR_STRATA_USAGE', message); }
}

interface Out { write(s: string): unknown }

function writeFiles(dir: string, files: Record<string, string>, force: boolean): void {
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (!force) {
    const clash = Object.keys(files).filter((f) => existsSync(join(dir, f)));
    if (clash.length > 0) throw new UsageError(`${dir}: ${clash.join(', ')} already exist (use --force to overwrite)`);
  }
  for (const [name, content] of Object.entries(files)) {
    const path = join(dir, name);
    const mode = name.includes('key') ? 0o600 : 0o644;
    writeFileSync(path, content, { mode });
    chmodSync(path, mode); // writeFileSync's mode only applies when it creates the file
  }
}

function positiveInt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new UsageError(`--${name} must be a positive integer, got ${JSON.stringify(v)}`);
  return n;
}

function keyType(v: string | undefined): KeyType | undefined {
  if (v === undefined || v === 'ec' || v === 'rsa') return v;
  throw new UsageError(`--key-type must be ec or rsa, got ${JSON.stringify(v)}`);
}

export async function main(argv: string[], out: Out = process.stdout, err: Out = process.stderr): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === undefined || sub === '-h' || sub === '--help' || sub === 'help') {
    (sub === undefined ? err : out).write(USAGE);
    return sub === undefined ? 2 : 0;
  }
  try {
    const { values } = parseArgs({
      args: rest,
      strict: true,
      allowPositionals: false,
      options: {
        out: { type: 'string' },
        ca: { type: 'string' },
        'trust-domain': { type: 'string' },
        'spiffe-id': { type: 'string' },
        dns: { type: 'string', multiple: true },
        ip: { type: 'string', multiple: true },
        days: { type: 'string' },
        'key-type': { type: 'string' },
        force: { type: 'boolean', default: false },
      },
    });
    const force = values.force ?? false;
    const days = positiveInt(values.days, 'days');
    const kt = keyType(values['key-type']);
    if (!values.out) throw new UsageError('--out DIR is required');
    const outDir = values.out;
    switch (sub) {
      case 'ca': {
        const ca = await createCa({ trustDomain: values['trust-domain'] ?? 'example.org', days: days ?? 365, keyType: kt });
        writeFiles(outDir, { 'cert.pem': ca.certPem, 'key.pem': ca.keyPem, 'bundle.pem': ca.certPem }, force);
        out.write(`CA for trust domain ${ca.trustDomain} written to ${outDir} (cert.pem, key.pem, bundle.pem); valid until ${ca.cert.notAfter.toISOString()}\n`);
        return 0;
      }
      case 'svid': {
        if (!values.ca) throw new UsageError('--ca DIR is required');
        if (!values['spiffe-id']) throw new UsageError('--spiffe-id is required');
        const ca = await loadCa(readFileSync(join(values.ca, 'cert.pem'), 'utf8'), readFileSync(join(values.ca, 'key.pem'), 'utf8'));
        const svid = await issueSvid(ca, { spiffeId: values['spiffe-id'], dns: values.dns, ip: values.ip, days: days ?? 30, keyType: kt });
        writeFiles(outDir, { 'cert.pem': svid.certPem, 'key.pem': svid.keyPem, 'chain.pem': svid.chainPem, 'bundle.pem': svid.bundlePem }, force);
        out.write(`SVID ${svid.spiffeId} written to ${outDir} (cert.pem, key.pem, chain.pem, bundle.pem); valid until ${svid.cert.notAfter.toISOString()}\n`);
        return 0;
      }
      case 'dev': {
        const td = values['trust-domain'] ?? 'example.org';
        const ca = await createCa({ trustDomain: td, days: 365, keyType: kt });
        const server = await issueSvid(ca, {
          spiffeId: `spiffe://${td}/ns/default/sa/server`,
          dns: [...DEV_SERVER_DNS, ...(values.dns ?? [])],
          ip: [...DEV_SERVER_IPS, ...(values.ip ?? [])],
          days: days ?? 30, keyType: kt,
        });
        const client = await issueSvid(ca, { spiffeId: `spiffe://${td}/ns/default/sa/client`, days: days ?? 30, keyType: kt });
        writeFiles(join(outDir, 'ca'), { 'cert.pem': ca.certPem, 'key.pem': ca.keyPem, 'bundle.pem': ca.certPem }, force);
        for (const [name, s] of [['server', server], ['client', client]] as const)
          writeFiles(join(outDir, name), { 'cert.pem': s.certPem, 'key.pem': s.keyPem, 'chain.pem': s.chainPem, 'bundle.pem': s.bundlePem }, force);
        out.write(`development PKI for ${td} written to ${outDir}: ca/, server/ (${server.spiffeId}), client/ (${client.spiffeId})\n`);
        return 0;
      }
      default:
        throw new UsageError(`unknown subcommand ${JSON.stringify(sub)}`);
    }
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    err.write(`strata certs: ${msg}\n`);
    if (e instanceof UsageError || (e as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      err.write(USAGE);
      return 2;
    }
    return 1;
  }
}
