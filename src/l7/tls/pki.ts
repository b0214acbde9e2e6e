// A small development PKI for SPIFFE: a self-signed CA for one trust domain
// and X509-SVIDs signed by it, built with @peculiar/x509 over Node's
// webcrypto (no hand-rolled ASN.1). `strata certs` is a thin CLI over this.
//
// Profiles follow X509-SVID (github.com/spiffe/spiffe standards/X509-SVID.md):
//   CA:   basicConstraints cA=TRUE (critical); keyUsage keyCertSign, cRLSign
//         (critical); URI SAN spiffe://<trust-domain> (no path, §3); SKI.
//   SVID: basicConstraints cA=FALSE (critical); keyUsage digitalSignature
//         (+ keyEncipherment for RSA keys) (critical); extKeyUsage serverAuth +
//         clientAuth; exactly one URI SAN, the SPIFFE ID, plus optional DNS
//         and IP SANs; SKI and AKI.
// Keys are ECDSA P-256 by default (RSA 2048 on request), exported as PKCS#8.
//
// `unsafe` options exist only so tests can produce certificates that break
// the profile (a CA as a leaf, two URI SANs …) and prove that they are refused.
import { isIP } from 'node:net';
import { x509, webcrypto } from './x509.js';
import { CertsError } from './errors.js';
import { parseSpiffeId, trustDomainId } from './spiffe.js';

export type KeyType = 'ec' | 'rsa';

const EC_ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const RSA_ALG = { name: 'RSASSA-PKCS1-v1_5', modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
/** Certificates start a little in the past so that small clock skew between peers does not reject them. */
const BACKDATE_MS = 5 * 60_000;

export interface Issued {
  cert: x509.X509Certificate;
  keys: CryptoKeyPair;
  certPem: string;
  keyPem: string;
}

export interface CertificateAuthority extends Issued {
  trustDomain: string;
}

export interface CreateCaOptions {
  trustDomain?: string;
  commonName?: string;
  /** Validity in days; default 365. */
  days?: number;
  keyType?: KeyType;
  /** Wall-clock time of issue (ms since epoch); default Date.now(). */
  now?: number;
}

export interface IssueSvidOptions {
  spiffeId: string;
  dns?: readonly string[];
  ip?: readonly string[];
  /** Validity in days; default 30. */
  days?: number;
  keyType?: KeyType;
  now?: number;
  /** Only for tests of the validator: produce a certificate that violates the X509-SVID profile. */
  unsafe?: {
    isCa?: boolean;
    extraUriSans?: readonly string[];
    keyUsage?: number;
    keyUsageCritical?: boolean;
    extKeyUsage?: readonly string[];
    skipSpiffeIdCheck?: boolean;
  };
}

export interface IssuedSvid extends Issued {
  spiffeId: string;
  /** leaf then CA, PEM */
  chainPem: string;
  /** the CA certificate(s) that verify this SVID, PEM */
  bundlePem: string;
}

function algFor(type: KeyType) {
  return type === 'rsa' ? RSA_ALG : EC_ALG;
}

async function generateKeys(type: KeyType): Promise<CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(algFor(type) as never, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key as never);
  return x509.PemConverter.encode(der as ArrayBuffer, 'PRIVATE KEY');
}

function validity(now: number, days: number): { notBefore: Date; notAfter: Date } {
  if (!Number.isFinite(days) || days <= 0) throw new CertsError(`validity must be a positive number of days, got ${days}`);
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) };
}

/** Escapes a value for an X.500 name string (RFC 4514). */
function rdn(v: string): string {
  return v.replace(/([,+"\\<>;=])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ');
}

export async function createCa(opts: CreateCaOptions = {}): Promise<CertificateAuthority> {
  const trustDomain = opts.trustDomain ?? 'example.org';
  let tdId: string;
  try { tdId = trustDomainId(trustDomain); } catch (err) { throw new CertsError((err as Error).message, { cause: err }); }
  const keyType = opts.keyType ?? 'ec';
  const keys = await generateKeys(keyType);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: `CN=${rdn(opts.commonName ?? `strata development CA for ${trustDomain}`)}, O=${rdn(trustDomain)}`,
    keys,
    signingAlgorithm: algFor(keyType),
    ...validity(opts.now ?? Date.now(), opts.days ?? 365),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      new x509.SubjectAlternativeNameExtension([{ type: 'url', value: tdId }], false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { trustDomain, cert, keys, certPem: cert.toString('pem') + '\n', keyPem: await exportKeyPem(keys.privateKey) + '\n' };
}

export async function issueSvid(ca: CertificateAuthority, opts: IssueSvidOptions): Promise<IssuedSvid> {
  const u = opts.unsafe ?? {};
  if (!u.skipSpiffeIdCheck) {
    let id;
    try { id = parseSpiffeId(opts.spiffeId); } catch (err) { throw new CertsError((err as Error).message, { cause: err }); }
    if (id.trustDomain !== ca.trustDomain)
      throw new CertsError(`SPIFFE ID ${opts.spiffeId} is not in the CA's trust domain ${ca.trustDomain}`);
    if (id.path === '') throw new CertsError(`SPIFFE ID ${opts.spiffeId} has no path; a trust domain ID cannot identify a workload`);
  }
  const names: x509.JsonGeneralName[] = [{ type: 'url', value: opts.spiffeId }];
  for (const extra of u.extraUriSans ?? []) names.push({ type: 'url', value: extra });
  for (const d of opts.dns ?? []) {
    if (!/^(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(d)) throw new CertsError(`invalid DNS name ${JSON.stringify(d)}`);
    names.push({ type: 'dns', value: d });
  }
  for (const a of opts.ip ?? []) {
    if (!isIP(a)) throw new CertsError(`invalid IP address ${JSON.stringify(a)}`);
    names.push({ type: 'ip', value: a });
  }
  const keyType = opts.keyType ?? 'ec';
  const keys = await generateKeys(keyType);
  const usage = u.keyUsage ?? (keyType === 'rsa'
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature);
  const cn = opts.dns?.[0];
  const cert = await x509.X509CertificateGenerator.create({
    subject: cn ? `CN=${rdn(cn)}, O=SPIFFE` : 'O=SPIFFE',
    issuer: ca.cert.subject,
    publicKey: keys.publicKey,
    signingKey: ca.keys.privateKey,
    signingAlgorithm: algFor(ca.keys.privateKey.algorithm.name === 'ECDSA' ? 'ec' : 'rsa'),
    ...validity(opts.now ?? Date.now(), opts.days ?? 30),
    extensions: [
      new x509.BasicConstraintsExtension(u.isCa ?? false, undefined, true),
      new x509.KeyUsagesExtension(usage, u.keyUsageCritical ?? true),
      new x509.ExtendedKeyUsageExtension((u.extKeyUsage ?? [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]) as string[], false),
      new x509.SubjectAlternativeNameExtension(names, false),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert),
    ],
  });
  const certPem = cert.toString('pem') + '\n';
  return {
    spiffeId: opts.spiffeId, cert, keys, certPem,
    keyPem: await exportKeyPem(keys.privateKey) + '\n',
    chainPem: certPem + ca.certPem,
    bundlePem: ca.certPem,
  };
}

/** Loads a CA written by createCa (cert and PKCS#8 key PEM) so it can issue more SVIDs. */
export async function loadCa(certPem: string, keyPem: string): Promise<CertificateAuthority> {
  let cert: x509.X509Certificate;
  try { cert = new x509.X509Certificate(certPem); } catch (err) { throw new CertsError(`CA certificate cannot be parsed: ${(err as Error).message}`, { cause: err }); }
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc?.ca) throw new CertsError('CA certificate is not a CA (basicConstraints cA is not true)');
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const uri = san?.names.items.find((n) => n.type === 'url')?.value;
  const trustDomain = uri ? parseSpiffeId(uri).trustDomain : undefined;
  if (!trustDomain) throw new CertsError('CA certificate has no spiffe:// URI SAN naming its trust domain');
  const alg = cert.publicKey.algorithm as { name: string; namedCurve?: string };
  const importAlg = alg.name === 'ECDSA' ? { name: 'ECDSA', namedCurve: alg.namedCurve ?? 'P-256' } : { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' };
  let privateKey: CryptoKey;
  try {
    const der = x509.PemConverter.decodeFirst(keyPem);
    privateKey = (await webcrypto.subtle.importKey('pkcs8', der, importAlg as never, true, ['sign'])) as unknown as CryptoKey;
  } catch (err) {
    throw new CertsError(`CA key cannot be loaded: ${(err as Error).message}`, { cause: err });
  }
  const publicKey = await cert.publicKey.export(importAlg as never, ['verify']);
  // Prove that key and certificate belong together before signing anything with them.
  const probe = new Uint8Array([1, 2, 3]);
  const sigAlg = importAlg.name === 'ECDSA' ? { name: 'ECDSA', hash: 'SHA-256' } : importAlg;
  const sig = await webcrypto.subtle.sign(sigAlg as never, privateKey as never, probe);
  if (!(await webcrypto.subtle.verify(sigAlg as never, publicKey as never, sig, probe)))
    throw new CertsError('CA key does not match the CA certificate');
  return { trustDomain, cert, keys: { privateKey, publicKey }, certPem: certPem.endsWith('\n') ? certPem : certPem + '\n', keyPem };
}
