// mTLS over any stream.Duplex (the stack's TcpSocket) and over node:net.
//
// Every connection is TLS 1.3 with a client certificate required. OpenSSL
// verifies the chain against the trust bundle; we then validate the peer's
// leaf as an X509-SVID (svid.ts) and expose its SPIFFE ID through
// peerIdentity(). A peer that fails either step is destroyed with an error
// carrying a stable code (SvidError, TlsPeerError, TlsPeerIdentityError)
// before any application data is delivered: data is only read after the
// 'secure' event, and validation runs in the first 'secure' listener.
//
// Why the server side does its own chain check: a TLSSocket constructed
// directly (isServer: true), which is the only way to get the socket back
// synchronously for a Duplex, completes the handshake even when the chain
// does not verify; only tls.Server's connection listener turns OpenSSL's
// verify result into a rejection. We read the same result (the handle's
// verifyError(), what tls.Server itself consults) and fail closed if it is
// not available. createMtlsServer uses tls.Server and gets both checks.
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import { SvidError, TlsPeerError, TlsHandshakeTimeoutError, TlsPeerIdentityError } from './errors.js';
import { validateSvid } from './svid.js';
import type { SpiffeId } from './spiffe.js';
import { TLS_VERSION, type TlsContextManager, type TlsContextSource } from './context.js';
import { tlsCarrier } from '../transport/tls-carrier.js';

/** Decides whether an authenticated peer may talk to us; return false to close the connection. */
export type PeerAuthorizer = (id: SpiffeId) => boolean;

export interface MtlsServerOptions {
  /** Overrides the context's trust domains. */
  trustDomains?: readonly string[];
  /** Runs after SVID validation (e.g. "only spiffe://td/ns/prod/…"); L7 policy is separate and later. */
  authorize?: PeerAuthorizer;
  /** Default 10 000 ms; 0 disables. */
  handshakeTimeoutMs?: number;
  ALPNProtocols?: string[];
}

export interface MtlsClientOptions {
  /** SNI to send (a DNS name; IP addresses are not sent as SNI). */
  servername?: string;
  /** The server's SPIFFE ID must equal this string, or satisfy this predicate. */
  expectServer?: string | PeerAuthorizer;
  trustDomains?: readonly string[];
  ALPNProtocols?: string[];
}

const identities = new WeakMap<tls.TLSSocket, SpiffeId>();

/** The validated SPIFFE identity of the peer, or null before the handshake completes / on a failed peer. */
export function peerIdentity(socket: tls.TLSSocket): SpiffeId | null {
  return identities.get(socket) ?? null;
}

/**
 * Resolves with the peer's identity once the socket is authenticated (null
 * for a server context without client certificates); rejects if it fails or
 * closes first.
 */
export function authenticated(socket: tls.TLSSocket): Promise<SpiffeId | null> {
  const known = identities.get(socket);
  if (known) return Promise.resolve(known);
  return new Promise((resolvePromise, reject) => {
    const done = (err: Error | null) => {
      socket.off('strata:authenticated', onAuth);
      socket.off('error', onError);
      socket.off('close', onClose);
      if (err) reject(err);
    };
    const onAuth = (id: SpiffeId | null) => { done(null); resolvePromise(id); };
    const onError = (err: Error) => done(err);
    const onClose = () => done(new TlsPeerError('CLOSED', 'connection closed before the peer was authenticated'));
    socket.on('strata:authenticated', onAuth);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}

/** Validates the peer of an established socket; returns an error to destroy it with, or the identity. */
function checkPeer(socket: tls.TLSSocket, trustDomains: readonly string[] | undefined, authorize: PeerAuthorizer | undefined): SpiffeId | Error {
  const cert = socket.getPeerX509Certificate();
  if (!cert) return new SvidError('ERR_STRATA_SVID_NO_CERT', 'peer presented no certificate');
  let id: SpiffeId;
  try {
    id = validateSvid(cert, trustDomains ? { trustDomains } : {});
  } catch (err) {
    return err as Error;
  }
  if (authorize && !authorize(id)) return new TlsPeerIdentityError(id.spiffeId, `peer ${id.spiffeId} is not authorized`);
  return id;
}

function chainError(socket: tls.TLSSocket): Error | null {
  const handle = (socket as unknown as { _handle?: { verifyError?: () => (Error & { code?: string }) | null } })._handle;
  if (!handle || typeof handle.verifyError !== 'function') {
    return new TlsPeerError('UNVERIFIABLE', 'cannot read the certificate verification result from this Node.js version; refusing the peer');
  }
  const e = handle.verifyError();
  if (!e) return null;
  return new TlsPeerError(e.code ?? 'UNKNOWN', `peer certificate chain does not verify: ${e.message}`);
}

function reject(socket: tls.TLSSocket, err: Error): void {
  socket.destroy(err);
}

/**
 * Server side of mTLS over any Duplex. Returns the TLSSocket at once; it
 * emits 'strata:authenticated' (SpiffeId, or null when the context does not
 * require client certificates) when the peer is validated, or
 * 'error' with a coded error and closes. Use authenticated() to await it.
 */
export function wrapServer(duplex: Duplex, ctx: TlsContextSource, opts: MtlsServerOptions = {}): tls.TLSSocket {
  const mutual = ctx.requireClientCert !== false;
  // On the stack, TLS runs over the TcpSocket's direct mode (tls-carrier.ts), not its stream.
  const socket = new tls.TLSSocket(tlsCarrier(duplex), {
    isServer: true,
    secureContext: ctx.secureContext,
    requestCert: mutual,
    rejectUnauthorized: true,
    ...(opts.ALPNProtocols ? { ALPNProtocols: opts.ALPNProtocols } : {}),
  });
  const trustDomains = opts.trustDomains ?? ctx.trustDomains;
  const timeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const timer = timeoutMs > 0 ? setTimeout(() => reject(socket, new TlsHandshakeTimeoutError(timeoutMs)), timeoutMs) : null;
  timer?.unref();
  socket.once('close', () => { if (timer) clearTimeout(timer); });
  socket.once('secure', () => {
    if (timer) clearTimeout(timer);
    if (!mutual) { socket.emit('strata:authenticated', null); return; }
    const chain = chainError(socket);
    if (chain) return reject(socket, chain);
    const r = checkPeer(socket, trustDomains, opts.authorize);
    if (r instanceof Error) return reject(socket, r);
    identities.set(socket, r);
    socket.emit('strata:authenticated', r);
  });
  return socket;
}

/**
 * Client side of mTLS over any Duplex (tls.connect with `socket`). The
 * server's certificate must chain to our bundle and be an X509-SVID; DNS
 * hostname checks are replaced by the SPIFFE ID check, as SPIFFE prescribes.
 */
export function wrapClient(duplex: Duplex, ctx: TlsContextSource, opts: MtlsClientOptions = {}): tls.TLSSocket {
  return connectWith({ socket: tlsCarrier(duplex) }, ctx, opts);
}

/** mTLS client over the kernel's TCP (node:net). */
export function connectMtls(target: { host: string; port: number }, ctx: TlsContextSource, opts: MtlsClientOptions = {}): tls.TLSSocket {
  return connectWith({ host: target.host, port: target.port }, ctx, opts);
}

function connectWith(base: tls.ConnectionOptions, ctx: TlsContextSource, opts: MtlsClientOptions): tls.TLSSocket {
  const trustDomains = opts.trustDomains ?? ctx.trustDomains;
  const expect = opts.expectServer;
  const authorize: PeerAuthorizer | undefined = typeof expect === 'string' ? (id) => id.spiffeId === expect : expect;
  let validated: SpiffeId | null = null;
  const socket = tls.connect({
    ...base,
    secureContext: ctx.secureContext,
    ...TLS_VERSION,
    rejectUnauthorized: true,
    ...(opts.servername ? { servername: opts.servername } : {}),
    ...(opts.ALPNProtocols ? { ALPNProtocols: opts.ALPNProtocols } : {}),
    checkServerIdentity: (_host, cert) => {
      let id: SpiffeId;
      try {
        id = validateSvid(new Uint8Array(cert.raw), trustDomains ? { trustDomains } : {});
      } catch (err) {
        return err as Error;
      }
      if (authorize && !authorize(id)) return new TlsPeerIdentityError(id.spiffeId, `server ${id.spiffeId} is not the expected peer`);
      validated = id;
      return undefined;
    },
  });
  socket.once('secureConnect', () => {
    if (validated) {
      identities.set(socket, validated);
      socket.emit('strata:authenticated', validated);
    }
  });
  return socket;
}

export interface MtlsServer extends tls.Server {
  readonly contextManager: TlsContextManager;
}

/**
 * An mTLS tls.Server for the kernel path. `onConnection` only ever sees
 * authenticated sockets (identity null only when the manager was built with
 * requireClientCert: false); refused peers are reported on 'strata:rejected'
 * (error, socket|undefined), both handshake failures (no certificate,
 * another CA) and SVID failures. The server follows the manager's reloads.
 */
export function createMtlsServer(
  mgr: TlsContextManager,
  opts: MtlsServerOptions,
  onConnection: (socket: tls.TLSSocket, id: SpiffeId | null) => void,
): MtlsServer {
  const server = tls.createServer({
    ...mgr.serverOptions(),
    handshakeTimeout: opts.handshakeTimeoutMs ?? 10_000,
    ...(opts.ALPNProtocols ? { ALPNProtocols: opts.ALPNProtocols } : {}),
  }) as MtlsServer;
  Object.defineProperty(server, 'contextManager', { value: mgr });
  mgr.track(server);
  server.on('tlsClientError', (err, socket) => server.emit('strata:rejected', err, socket));
  server.on('secureConnection', (socket: tls.TLSSocket) => {
    if (!mgr.requireClientCert) { onConnection(socket, null); return; }
    const r = checkPeer(socket, opts.trustDomains ?? mgr.trustDomains, opts.authorize);
    if (r instanceof Error) {
      // The socket is ours to destroy; swallow its own 'error' so the process does not crash.
      socket.on('error', () => {});
      socket.destroy(r);
      server.emit('strata:rejected', r, socket);
      return;
    }
    identities.set(socket, r);
    onConnection(socket, r);
  });
  return server;
}
