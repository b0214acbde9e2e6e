// Error classes for mTLS and SPIFFE identities, each with a stable code.
import { StrataError } from '../../util/errors.js';

/** Stable codes for every way a peer certificate can fail X509-SVID validation. */
export const SvidErrorCode = {
  PARSE: 'ERR_STRATA_SVID_PARSE',
  NO_CERT: 'ERR_STRATA_SVID_NO_CERT',
  NO_URI_SAN: 'ERR_STRATA_SVID_NO_URI_SAN',
  MULTIPLE_URI_SANS: 'ERR_STRATA_SVID_MULTIPLE_URI_SANS',
  BAD_SPIFFE_ID: 'ERR_STRATA_SVID_BAD_SPIFFE_ID',
  LEAF_IS_CA: 'ERR_STRATA_SVID_LEAF_IS_CA',
  LEAF_NO_PATH: 'ERR_STRATA_SVID_LEAF_NO_PATH',
  KEY_USAGE_NOT_CRITICAL: 'ERR_STRATA_SVID_KEY_USAGE_NOT_CRITICAL',
  SAN_NOT_CRITICAL: 'ERR_STRATA_SVID_SAN_NOT_CRITICAL',
  NO_KEY_USAGE: 'ERR_STRATA_SVID_NO_KEY_USAGE',
  NO_DIGITAL_SIGNATURE: 'ERR_STRATA_SVID_NO_DIGITAL_SIGNATURE',
  LEAF_CAN_SIGN: 'ERR_STRATA_SVID_LEAF_CAN_SIGN',
  BAD_EXT_KEY_USAGE: 'ERR_STRATA_SVID_BAD_EXT_KEY_USAGE',
  UNTRUSTED_DOMAIN: 'ERR_STRATA_SVID_UNTRUSTED_DOMAIN',
  CA_NOT_CA: 'ERR_STRATA_SVID_CA_NOT_CA',
  CA_HAS_PATH: 'ERR_STRATA_SVID_CA_HAS_PATH',
  CA_NO_KEY_CERT_SIGN: 'ERR_STRATA_SVID_CA_NO_KEY_CERT_SIGN',
} as const;
export type SvidErrorCode = (typeof SvidErrorCode)[keyof typeof SvidErrorCode];

/** A certificate is not a valid X509-SVID (or the SPIFFE ID in it is malformed). */
export class SvidError extends StrataError {
  declare readonly code: SvidErrorCode;
  constructor(code: SvidErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/** A string is not a SPIFFE ID per the SPIFFE-ID specification. */
export class SpiffeIdError extends StrataError {
  constructor(readonly input: string, reason: string) {
    super('ERR_STRATA_SPIFFE_ID', `invalid SPIFFE ID ${JSON.stringify(input.length > 80 ? input.slice(0, 80) + '…' : input)}: ${reason}`);
  }
}

/** Loading certificate, key or CA files failed; the previous context (if any) stays in use. */
export class TlsContextError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_STRATA_TLS_CONTEXT', message, options);
  }
}

/** Generating certificates (strata certs) failed. */
export class CertsError extends StrataError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_STRATA_CERTS', message, options);
  }
}

/** The peer's certificate chain did not verify against our trust bundle (OpenSSL's reason in `reason`). */
export class TlsPeerError extends StrataError {
  constructor(readonly reason: string, message: string) {
    super('ERR_STRATA_TLS_PEER_UNVERIFIED', message);
  }
}

/** The TLS handshake did not complete in time. */
export class TlsHandshakeTimeoutError extends StrataError {
  constructor(ms: number) {
    super('ERR_STRATA_TLS_HANDSHAKE_TIMEOUT', `TLS handshake did not complete within ${ms} ms`);
  }
}

/** The peer presented a valid SVID whose SPIFFE ID we do not accept. */
export class TlsPeerIdentityError extends StrataError {
  constructor(readonly spiffeId: string, message: string) {
    super('ERR_STRATA_TLS_PEER_IDENTITY', message);
  }
}
