// mTLS with SPIFFE identities: public surface of src/l7/tls.
export { parseSpiffeId, tryParseSpiffeId, trustDomainId, trustDomainError, pathError, type SpiffeId } from './spiffe.js';
export { validateSvid, validateSigningCertificate, type SvidValidationOptions, type CertificateInput } from './svid.js';
export { TlsContextManager, TLS_VERSION, reloadOnSignal, type TlsFiles, type TlsContextManagerOptions, type ReloadResult, type TlsContextSource } from './context.js';
export { wrapServer, wrapClient, connectMtls, createMtlsServer, peerIdentity, authenticated, type MtlsServerOptions, type MtlsClientOptions, type MtlsServer, type PeerAuthorizer } from './mtls.js';
export { createCa, issueSvid, loadCa, type CertificateAuthority, type IssuedSvid, type CreateCaOptions, type IssueSvidOptions, type KeyType } from './pki.js';
export { SvidError, SvidErrorCode, SpiffeIdError, TlsContextError, TlsPeerError, TlsPeerIdentityError, TlsHandshakeTimeoutError, CertsError } from './errors.js';
