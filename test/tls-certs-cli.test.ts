// `strata certs` end to end: files, modes, extensions as openssl reads them,
// SVIDs issued from a CA directory written earlier, and usage errors.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, statSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../src/cli/certs.js';
import { run } from '../src/util/run.js';
import { validateSvid, TlsContextManager } from '../src/l7/tls/index.js';

let dir: string;
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'strata-certs-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

function capture() {
  const out: string[] = []; const err: string[] = [];
  return { out, err, o: { write: (s: string) => out.push(s) }, e: { write: (s: string) => err.push(s) } };
}
const mode = (p: string) => statSync(p).mode & 0o777;

describe('strata certs', () => {
  it('ca, then svid from that CA directory', async () => {
    const c = capture();
    expect(await main(['ca', '--out', join(dir, 'ca'), '--trust-domain', 'prod.example'], c.o, c.e)).toBe(0);
    expect(c.out.join('')).toContain('trust domain prod.example');
    expect(mode(join(dir, 'ca/key.pem'))).toBe(0o600);
    expect(mode(join(dir, 'ca/cert.pem'))).toBe(0o644);
    const caText = run(['openssl', 'x509', '-in', join(dir, 'ca/cert.pem'), '-noout', '-text']);
    expect(caText).toMatch(/CA:TRUE/);
    expect(caText).toMatch(/Certificate Sign, CRL Sign/);
    expect(caText).toContain('URI:spiffe://prod.example');
    expect(caText).toContain('prime256v1');

    expect(await main(['svid', '--ca', join(dir, 'ca'), '--spiffe-id', 'spiffe://prod.example/ns/web/sa/api', '--out', join(dir, 'api'),
      '--dns', 'api.local', '--ip', '10.1.2.3', '--days', '7'], c.o, c.e)).toBe(0);
    expect(mode(join(dir, 'api/key.pem'))).toBe(0o600);
    const text = run(['openssl', 'x509', '-in', join(dir, 'api/cert.pem'), '-noout', '-text']);
    expect(text).toMatch(/CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\s/);
    expect(text).toContain('TLS Web Server Authentication, TLS Web Client Authentication');
    expect(text).toContain('URI:spiffe://prod.example/ns/web/sa/api, DNS:api.local, IP Address:10.1.2.3');
    expect(text).toMatch(/Subject: .*CN = api.local/);
    expect(text).toMatch(/Subject: .*O = SPIFFE/);
    const enddate = run(['openssl', 'x509', '-in', join(dir, 'api/cert.pem'), '-noout', '-checkend', String(6 * 86400)]);
    expect(enddate).toContain('will not expire');
    expect(run(['openssl', 'verify', '-CAfile', join(dir, 'api/bundle.pem'), join(dir, 'api/cert.pem')])).toContain('OK');
    // chain.pem = leaf then CA
    const chain = readFileSync(join(dir, 'api/chain.pem'), 'utf8');
    expect(chain.match(/BEGIN CERTIFICATE/g)).toHaveLength(2);
    expect(chain.startsWith(readFileSync(join(dir, 'api/cert.pem'), 'utf8'))).toBe(true);
    expect(validateSvid(readFileSync(join(dir, 'api/cert.pem'), 'utf8')).trustDomain).toBe('prod.example');
  });

  it('svid with an RSA key has keyEncipherment', async () => {
    const c = capture();
    expect(await main(['svid', '--ca', join(dir, 'ca'), '--spiffe-id', 'spiffe://prod.example/rsa', '--out', join(dir, 'rsa'), '--key-type', 'rsa'], c.o, c.e)).toBe(0);
    const text = run(['openssl', 'x509', '-in', join(dir, 'rsa/cert.pem'), '-noout', '-text']);
    expect(text).toMatch(/Digital Signature, Key Encipherment/);
    expect(text).toContain('rsaEncryption');
  });

  it('dev makes a CA, a server and a client SVID that TlsContextManager accepts', async () => {
    const c = capture();
    expect(await main(['dev', '--out', join(dir, 'dev'), '--trust-domain', 'dev.test'], c.o, c.e)).toBe(0);
    for (const who of ['server', 'client']) {
      const m = new TlsContextManager({ certFile: join(dir, `dev/${who}/cert.pem`), keyFile: join(dir, `dev/${who}/key.pem`), caFile: join(dir, 'dev/ca/bundle.pem') });
      expect(m.identity.spiffeId).toBe(`spiffe://dev.test/ns/default/sa/${who}`);
      expect(m.trustDomains).toEqual(['dev.test']);
      m.close();
      expect(mode(join(dir, `dev/${who}/key.pem`))).toBe(0o600);
    }
    const text = run(['openssl', 'x509', '-in', join(dir, 'dev/server/cert.pem'), '-noout', '-ext', 'subjectAltName']);
    expect(text).toContain('DNS:localhost');
    expect(text).toContain('IP Address:127.0.0.1');
    expect(text).toContain('IP Address:10.200.0.3');
  });

  it('does not overwrite without --force', async () => {
    const c = capture();
    expect(await main(['ca', '--out', join(dir, 'ca')], c.o, c.e)).toBe(2);
    expect(c.err.join('')).toMatch(/already exist.*--force/);
    const before = readFileSync(join(dir, 'ca/cert.pem'), 'utf8');
    expect(await main(['ca', '--out', join(dir, 'ca'), '--trust-domain', 'prod.example', '--force'], c.o, c.e)).toBe(0);
    expect(readFileSync(join(dir, 'ca/cert.pem'), 'utf8')).not.toBe(before);
  });

  it('reports usage errors and bad inputs with non-zero status', async () => {
    const cases: [string[], number, RegExp][] = [
      [[], 2, /usage/],
      [['bogus', '--out', dir], 2, /unknown subcommand/],
      [['ca'], 2, /--out DIR is required/],
      [['ca', '--out', join(dir, 'x'), '--nope'], 2, /Unknown option/],
      [['ca', '--out', join(dir, 'x'), '--trust-domain', 'Bad.Domain'], 1, /lower case/],
      [['ca', '--out', join(dir, 'x'), '--days=-3'], 2, /positive integer/],
      [['svid', '--ca', join(dir, 'ca'), '--out', join(dir, 'y')], 2, /--spiffe-id is required/],
      [['svid', '--ca', join(dir, 'ca'), '--out', join(dir, 'y'), '--spiffe-id', 'spiffe://other.td/x'], 1, /not in the CA's trust domain/],
      [['svid', '--ca', join(dir, 'ca'), '--out', join(dir, 'y'), '--spiffe-id', 'spiffe://prod.example/a//b'], 1, /empty segments/],
      [['svid', '--ca', join(dir, 'nope'), '--out', join(dir, 'y'), '--spiffe-id', 'spiffe://prod.example/a'], 1, /ENOENT/],
    ];
    for (const [argv, status, why] of cases) {
      const c = capture();
      expect(await main(argv, c.o, c.e), argv.join(' ')).toBe(status);
      expect(c.err.join(''), argv.join(' ')).toMatch(why);
    }
    // A CA key that does not belong to the CA certificate is refused before anything is signed.
    writeFileSync(join(dir, 'ca/key.pem'), readFileSync(join(dir, 'dev/ca/key.pem')));
    const c = capture();
    expect(await main(['svid', '--ca', join(dir, 'ca'), '--out', join(dir, 'z'), '--spiffe-id', 'spiffe://prod.example/a'], c.o, c.e)).toBe(1);
    expect(c.err.join('')).toMatch(/does not match/);
  });
});
