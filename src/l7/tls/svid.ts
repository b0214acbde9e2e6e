// X509-SVID validation (github.com/spiffe/spiffe standards/X509-SVID.md).
//
// The chain itself (signatures, validity dates, path to a trusted root) is
// verified by OpenSSL during the handshake, because the TLS context is built
// with requestCert + rejectUnauthorized and our CA bundle. What OpenSSL does
// not know about is SPIFFE, and that is checked here, on the leaf:
//
// - exactly one URI SAN, which is a valid SPIFFE ID (§2, SPIFFE-ID spec)
//   with a non-root path (§3.1, §5.2); the SAN extension is critical when
//   the subject is empty (§3.1, RFC 5280 4.1.2.6);
// - basicConstraints cA is false, or the extension is absent (§4.1);
// - keyUsage is present, critical, and has digitalSignature (§4.3); keyCertSign and
//   cRLSign are not set, since a leaf must not be able to sign (§4.3);
// - extendedKeyUsage, when present, contains both id-kp-serverAuth and
//   id-kp-clientAuth (§4.4);
// - optionally, the trust domain is one the caller trusts (§5: a peer's trust
//   domain must match the bundle it was validated with).
//
// Signing certificates (our CA) are checked by validateSigningCertificate:
// cA true, keyCertSign set, and a SPIFFE ID, if present, without a path (§3).
//
// Certificates are parsed with @peculiar/x509: no hand-rolled ASN.1.
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { x509 } from './x509.js';
import { SvidError, SvidErrorCode } from './errors.js';
import { parseSpiffeId, type SpiffeId } from './spiffe.js';
import { SpiffeIdError } from './errors.js';

export type CertificateInput = Uint8Array | string | NodeX509Certificate | x509.X509Certificate;

export interface SvidValidationOptions {
  /** If given, the SPIFFE ID's trust domain must be one of these. */
  trustDomains?: readonly string[];
}

function toPeculiar(input: CertificateInput): x509.X509Certificate {
  try {
    if (input instanceof x509.X509Certificate) return input;
    if (input instanceof NodeX509Certificate) return new x509.X509Certificate(new Uint8Array(input.raw) as never);
    if (typeof input === 'string') return new x509.X509Certificate(input);
    return new x509.X509Certificate(new Uint8Array(input) as never);
  } catch (err) {
    throw new SvidError(SvidErrorCode.PARSE, `certificate cannot be parsed: ${(err as Error).message}`, { cause: err });
  }
}

function uriSans(cert: x509.X509Certificate): string[] {
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  if (!san) return [];
  const out: string[] = [];
  for (const n of san.names.items) if (n.type === 'url') out.push(n.value);
  return out;
}

function spiffeIdOf(cert: x509.X509Certificate, what: string): SpiffeId {
  const uris = uriSans(cert);
  if (uris.length === 0) throw new SvidError(SvidErrorCode.NO_URI_SAN, `${what} has no URI SAN (an X509-SVID carries its SPIFFE ID there)`);
  if (uris.length > 1) throw new SvidError(SvidErrorCode.MULTIPLE_URI_SANS, `${what} has ${uris.length} URI SANs; an X509-SVID must have exactly one`);
  try {
    return parseSpiffeId(uris[0]!);
  } catch (err) {
    if (err instanceof SpiffeIdError) throw new SvidError(SvidErrorCode.BAD_SPIFFE_ID, `${what} URI SAN: ${err.message}`, { cause: err });
    throw err;
  }
}

/** Validates a leaf certificate as an X509-SVID and returns its SPIFFE ID; throws SvidError. */
export function validateSvid(input: CertificateInput, opts: SvidValidationOptions = {}): SpiffeId {
  const cert = toPeculiar(input);
  const id = spiffeIdOf(cert, 'leaf certificate');
  if (cert.subjectName.toJSON().length === 0 && !cert.getExtension(x509.SubjectAlternativeNameExtension)!.critical)
    throw new SvidError(SvidErrorCode.SAN_NOT_CRITICAL, `leaf certificate ${id.spiffeId} has an empty subject, so its SAN extension must be critical`);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (bc && bc.ca) throw new SvidError(SvidErrorCode.LEAF_IS_CA, `leaf certificate ${id.spiffeId} is a CA (basicConstraints cA=true)`);
  if (id.path === '') throw new SvidError(SvidErrorCode.LEAF_NO_PATH, `leaf certificate SPIFFE ID ${id.spiffeId} has no path; a trust domain ID cannot identify a workload`);
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (!ku) throw new SvidError(SvidErrorCode.NO_KEY_USAGE, `leaf certificate ${id.spiffeId} has no keyUsage extension`);
  if (!ku.critical) throw new SvidError(SvidErrorCode.KEY_USAGE_NOT_CRITICAL, `leaf certificate ${id.spiffeId} keyUsage extension must be critical`);
  if ((ku.usages & x509.KeyUsageFlags.digitalSignature) === 0)
    throw new SvidError(SvidErrorCode.NO_DIGITAL_SIGNATURE, `leaf certificate ${id.spiffeId} keyUsage lacks digitalSignature`);
  if ((ku.usages & (x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign)) !== 0)
    throw new SvidError(SvidErrorCode.LEAF_CAN_SIGN, `leaf certificate ${id.spiffeId} keyUsage has keyCertSign or cRLSign`);
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension);
  if (eku) {
    const u = eku.usages.map(String);
    if (!u.includes(x509.ExtendedKeyUsage.serverAuth) || !u.includes(x509.ExtendedKeyUsage.clientAuth))
      throw new SvidError(SvidErrorCode.BAD_EXT_KEY_USAGE, `leaf certificate ${id.spiffeId} extendedKeyUsage must contain serverAuth and clientAuth`);
  }
  if (opts.trustDomains && !opts.trustDomains.includes(id.trustDomain))
    throw new SvidError(SvidErrorCode.UNTRUSTED_DOMAIN, `trust domain ${id.trustDomain} is not trusted (trusted: ${opts.trustDomains.join(', ') || 'none'})`);
  return id;
}

/** Validates a CA (signing) certificate per X509-SVID §3; returns its trust domain ID if it carries one. */
export function validateSigningCertificate(input: CertificateInput): SpiffeId | null {
  const cert = toPeculiar(input);
  const bc = cert.getExtension(x509.BasicConstraintsExtension);
  if (!bc || !bc.ca) throw new SvidError(SvidErrorCode.CA_NOT_CA, 'signing certificate must have basicConstraints cA=true');
  const ku = cert.getExtension(x509.KeyUsagesExtension);
  if (!ku || (ku.usages & x509.KeyUsageFlags.keyCertSign) === 0)
    throw new SvidError(SvidErrorCode.CA_NO_KEY_CERT_SIGN, 'signing certificate keyUsage must have keyCertSign');
  if (uriSans(cert).length === 0) return null;
  const id = spiffeIdOf(cert, 'signing certificate');
  if (id.path !== '') throw new SvidError(SvidErrorCode.CA_HAS_PATH, `signing certificate SPIFFE ID ${id.spiffeId} must not have a path`);
  return id;
}
