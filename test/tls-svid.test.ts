// SPIFFE ID syntax (SPIFFE-ID.md) and X509-SVID leaf/CA profile checks
// (X509-SVID.md), on certificates made by our own PKI, including ones that
// deliberately break the profile.
import { describe, it, expect, beforeAll } from 'vitest';
import { X509Certificate } from 'node:crypto';
import {
  parseSpiffeId, tryParseSpiffeId, validateSvid, validateSigningCertificate, createCa, issueSvid,
  SvidError, SpiffeIdError, type CertificateAuthority,
} from '../src/l7/tls/index.js';
import { x509 } from '../src/l7/tls/x509.js';

describe('parseSpiffeId', () => {
  it('splits trust domain and path', () => {
    expect(parseSpiffeId('spiffe://example.org/ns/default/sa/client')).toEqual({
      spiffeId: 'spiffe://example.org/ns/default/sa/client', trustDomain: 'example.org', path: '/ns/default/sa/client',
    });
    expect(parseSpiffeId('spiffe://td-1.example_x')).toEqual({ spiffeId: 'spiffe://td-1.example_x', trustDomain: 'td-1.example_x', path: '' });
    expect(parseSpiffeId('spiffe://a/B.c-d_E/9').path).toBe('/B.c-d_E/9');
  });

  const bad: [string, RegExp][] = [
    ['', /empty/],
    ['http://example.org/x', /scheme/],
    ['SPIFFE://example.org/x', /lower-case/],
    ['spiffe://', /trust domain is missing/],
    ['spiffe:///path', /trust domain is missing/],
    ['spiffe://Example.org/x', /lower case/],
    ['spiffe://example.org:8080/x', /port/],
    ['spiffe://user@example.org/x', /userinfo/],
    ['spiffe://example.org/', /end with/],
    ['spiffe://example.org/a/', /end with/],
    ['spiffe://example.org//a', /empty segments/],
    ['spiffe://example.org/a/./b', /"\." or "\.\."/],
    ['spiffe://example.org/a/..', /"\." or "\.\."/],
    ['spiffe://example.org/a?x=1', /query/],
    ['spiffe://example.org/a#frag', /fragment/],
    ['spiffe://example.org/a%20b', /percent/],
    ['spiffe://example.org/a b', /invalid character/],
    ['spiffe://' + 'a'.repeat(256), /longer than 255/],
    ['spiffe://example.org/' + 'a'.repeat(2040), /2048 bytes/],
  ];
  for (const [id, why] of bad) {
    it(`rejects ${JSON.stringify(id.slice(0, 40))}`, () => {
      expect(() => parseSpiffeId(id)).toThrow(SpiffeIdError);
      expect(() => parseSpiffeId(id)).toThrow(why);
      expect(tryParseSpiffeId(id)).toBeNull();
    });
  }
});

describe('validateSvid', () => {
  let ca: CertificateAuthority;
  beforeAll(async () => { ca = await createCa({ trustDomain: 'example.org' }); });

  function codeOf(fn: () => unknown): string {
    try { fn(); } catch (err) { expect(err).toBeInstanceOf(SvidError); return (err as SvidError).code; }
    throw new Error('expected an SvidError');
  }

  it('accepts a well-formed SVID given as PEM, DER, Node X509Certificate and @peculiar object', async () => {
    const s = await issueSvid(ca, { spiffeId: 'spiffe://example.org/ns/default/sa/client', dns: ['client.local'], ip: ['10.0.0.1'] });
    const want = { spiffeId: 'spiffe://example.org/ns/default/sa/client', trustDomain: 'example.org', path: '/ns/default/sa/client' };
    expect(validateSvid(s.certPem)).toEqual(want);
    expect(validateSvid(new X509Certificate(s.certPem))).toEqual(want);
    expect(validateSvid(new X509Certificate(s.certPem).raw)).toEqual(want);
    expect(validateSvid(s.cert)).toEqual(want);
    expect(validateSvid(s.certPem, { trustDomains: ['example.org', 'other.org'] })).toEqual(want);
  });

  it('accepts an RSA SVID (keyEncipherment alongside digitalSignature)', async () => {
    const s = await issueSvid(ca, { spiffeId: 'spiffe://example.org/rsa', keyType: 'rsa' });
    expect(validateSvid(s.certPem).path).toBe('/rsa');
    const ku = s.cert.getExtension(x509.KeyUsagesExtension)!;
    expect(ku.usages & x509.KeyUsageFlags.keyEncipherment).toBeTruthy();
  });

  it('rejects a leaf that is a CA', async () => {
    const s = await issueSvid(ca, { spiffeId: 'spiffe://example.org/evil', unsafe: { isCa: true } });
    expect(codeOf(() => validateSvid(s.certPem))).toBe('ERR_STRATA_SVID_LEAF_IS_CA');
  });

  it('rejects two URI SANs', async () => {
    const s = await issueSvid(ca, { spiffeId: 'spiffe://example.org/a', unsafe: { extraUriSans: ['spiffe://example.org/b'] } });
    expect(codeOf(() => validateSvid(s.certPem))).toBe('ERR_STRATA_SVID_MULTIPLE_URI_SANS');
  });

  it('rejects a URI SAN that is not a valid SPIFFE ID', async () => {
    const s = await issueSvid(ca, { spiffeId: 'https://example.org/a', unsafe: { skipSpiffeIdCheck: true } });
    expect(codeOf(() => validateSvid(s.certPem))).toBe('ERR_STRATA_SVID_BAD_SPIFFE_ID');
    const t = await issueSvid(ca, { spiffeId: 'spiffe://example.org/a/../b', unsafe: { skipSpiffeIdCheck: true } });
    expect(codeOf(() => validateSvid(t.certPem))).toBe('ERR_STRATA_SVID_BAD_SPIFFE_ID');
  });

  it('rejects a leaf whose SPIFFE ID has no path (§3.1, §5.2)', async () => {
    const s = await issueSvid(ca, { spiffeId: 'spiffe://example.org', unsafe: { skipSpiffeIdCheck: true } });
    expect(codeOf(() => validateSvid(s.certPem))).toBe('ERR_STRATA_SVID_LEAF_NO_PATH');
  });

  it('rejects a keyUsage extension that is not critical (§4.3)', async () => {
    const s = await issueSvid(ca, { spiffeId: 'spiffe://example.org/a', unsafe: { keyUsageCritical: false } });
    expect(codeOf(() => validateSvid(s.certPem))).toBe('ERR_STRATA_SVID_KEY_USAGE_NOT_CRITICAL');
  });

  it('rejects a missing digitalSignature, and keyCertSign on a leaf', async () => {
    const a = await issueSvid(ca, { spiffeId: 'spiffe://example.org/a', unsafe: { keyUsage: x509.KeyUsageFlags.keyEncipherment } });
    expect(codeOf(() => validateSvid(a.certPem))).toBe('ERR_STRATA_SVID_NO_DIGITAL_SIGNATURE');
    const b = await issueSvid(ca, { spiffeId: 'spiffe://example.org/b', unsafe: { keyUsage: x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyCertSign } });
    expect(codeOf(() => validateSvid(b.certPem))).toBe('ERR_STRATA_SVID_LEAF_CAN_SIGN');
  });

  it('rejects an extKeyUsage without clientAuth', async () => {
    const s = await issueSvid(ca, { spiffeId: 'spiffe://example.org/a', unsafe: { extKeyUsage: [x509.ExtendedKeyUsage.serverAuth] } });
    expect(codeOf(() => validateSvid(s.certPem))).toBe('ERR_STRATA_SVID_BAD_EXT_KEY_USAGE');
  });

  it('rejects a certificate without URI SAN (the CA itself is also not a leaf)', async () => {
    expect(codeOf(() => validateSvid(ca.certPem))).toBe('ERR_STRATA_SVID_LEAF_IS_CA');
    const other = await createCa({ trustDomain: 'other.org' });
    const s = await issueSvid(other, { spiffeId: 'spiffe://other.org/x' });
    expect(codeOf(() => validateSvid(s.certPem, { trustDomains: ['example.org'] }))).toBe('ERR_STRATA_SVID_UNTRUSTED_DOMAIN');
    expect(codeOf(() => validateSvid('-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'))).toBe('ERR_STRATA_SVID_PARSE');
  });

  it('checks signing certificates: CA true, keyCertSign, trust domain ID without path', async () => {
    expect(validateSigningCertificate(ca.certPem)).toEqual({ spiffeId: 'spiffe://example.org', trustDomain: 'example.org', path: '' });
    const leaf = await issueSvid(ca, { spiffeId: 'spiffe://example.org/a' });
    expect(() => validateSigningCertificate(leaf.certPem)).toThrow(/cA=true/);
    const caLeaf = await issueSvid(ca, { spiffeId: 'spiffe://example.org/a', unsafe: { isCa: true, keyUsage: x509.KeyUsageFlags.keyCertSign } });
    expect(() => validateSigningCertificate(caLeaf.certPem)).toThrow(/must not have a path/);
  });

  it('refuses to issue IDs outside the CA trust domain or without a path', async () => {
    await expect(issueSvid(ca, { spiffeId: 'spiffe://other.org/a' })).rejects.toThrow(/not in the CA's trust domain/);
    await expect(issueSvid(ca, { spiffeId: 'spiffe://example.org' })).rejects.toThrow(/no path/);
    await expect(issueSvid(ca, { spiffeId: 'spiffe://example.org/a', ip: ['1.2.3'] })).rejects.toThrow(/invalid IP/);
  });
});
