// TlsContextManager: the certificate, key and CA bundle of one mTLS
// identity, loaded from PEM files, validated, and swapped atomically on
// reload. New handshakes use the current SecureContext; connections already
// open keep the SSL object they were created with (OpenSSL reference-counts
// the SSL_CTX), so reload never drops a connection.
//
// A reload that fails (unreadable file, bad PEM, key not matching the
// certificate, certificate not an X509-SVID, expired, CA bundle without a
// CA …) keeps the previous context and reports the error: the 'reloadError'
// event and the return value of reload(). Certificate rotation usually writes
// the cert and the key one after the other, so a transient mismatch is normal;
// the next change event retries.
//
// Files are watched through their directories (fs.watch on a directory sees
// the rename-into-place that cert-manager, SPIRE's helper and Kubernetes
// secret volumes all use); events are debounced. reload() can be called at
// any time, e.g. on SIGHUP.
import { EventEmitter } from 'node:events';
import { readFileSync, watch, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import tls from 'node:tls';
import { X509Certificate as NodeX509Certificate } from 'node:crypto';
import { x509 } from './x509.js';
import { TlsContextError, SvidError } from './errors.js';
import { validateSvid, validateSigningCertificate } from './svid.js';
import type { SpiffeId } from './spiffe.js';
import { wallClock, type Clock } from '../../util/clock.js';

export interface TlsFiles {
  /** PEM: the leaf SVID, optionally followed by intermediates */
  certFile: string;
  /** PEM: PKCS#8 / SEC1 / PKCS#1 private key of the leaf */
  keyFile: string;
  /** PEM: the trust bundle (one or more CA certificates) */
  caFile: string;
}

export interface TlsContextManagerOptions extends TlsFiles {
  /** Trust domains whose SVIDs peers may present; default: those named by the CA bundle's URI SANs, or any if none. */
  trustDomains?: readonly string[];
  /**
   * Ask for and verify a client certificate (mTLS); default true. With false
   * the server side is plain TLS 1.3 and peers have no identity.
   */
  requireClientCert?: boolean;
  /** Watch the files and reload on change; default false (call watch() later). */
  watch?: boolean;
  /** Quiet period after the last file event before reloading; default 200 ms. */
  watchDebounceMs?: number;
  /** Wall clock for certificate validity checks; default wallClock. */
  clock?: Clock;
}

/** What a reload did. */
export type ReloadResult =
  | { ok: true; generation: number; spiffeId: string; notAfter: Date }
  | { ok: false; error: TlsContextError };

/** Anything that hands out the SecureContext for a new handshake. */
export interface TlsContextSource {
  readonly secureContext: tls.SecureContext;
  readonly trustDomains: readonly string[] | undefined;
  /** false: server side does not request client certificates (default true) */
  readonly requireClientCert?: boolean;
}

/** The protocol floor and ceiling strata uses everywhere: TLS 1.3 only. */
export const TLS_VERSION = { minVersion: 'TLSv1.3', maxVersion: 'TLSv1.3' } as const;

interface Loaded {
  pem: { cert: string; key: string; ca: string };
  context: tls.SecureContext;
  identity: SpiffeId;
  notAfter: Date;
  bundleTrustDomains: string[];
}

export class TlsContextManager extends EventEmitter implements TlsContextSource {
  readonly files: TlsFiles;
  private loaded: Loaded;
  private gen = 1;
  private readonly clock: Clock;
  private readonly explicitTrustDomains: readonly string[] | undefined;
  private watchers: FSWatcher[] = [];
  private debounce: NodeJS.Timeout | null = null;
  private readonly debounceMs: number;
  private readonly servers = new Set<tls.Server>();
  readonly requireClientCert: boolean;

  /** Loads and validates the files; throws TlsContextError if they are not usable. */
  constructor(opts: TlsContextManagerOptions) {
    super();
    this.files = { certFile: resolve(opts.certFile), keyFile: resolve(opts.keyFile), caFile: resolve(opts.caFile) };
    this.clock = opts.clock ?? wallClock;
    this.explicitTrustDomains = opts.trustDomains;
    this.debounceMs = opts.watchDebounceMs ?? 200;
    this.requireClientCert = opts.requireClientCert ?? true;
    this.loaded = this.load();
    if (opts.watch) this.watch();
  }

  /** The context for the next handshake. */
  get secureContext(): tls.SecureContext { return this.loaded.context; }
  /** Increments on every successful reload. */
  get generation(): number { return this.gen; }
  /** Our own SPIFFE ID, from the current certificate. */
  get identity(): SpiffeId { return this.loaded.identity; }
  get notAfter(): Date { return this.loaded.notAfter; }
  /** Trust domains accepted from peers (undefined: any that chains to the bundle). */
  get trustDomains(): readonly string[] | undefined {
    if (this.explicitTrustDomains) return this.explicitTrustDomains;
    return this.loaded.bundleTrustDomains.length > 0 ? this.loaded.bundleTrustDomains : undefined;
  }

  /**
   * Options for tls.createServer: TLS 1.3 only, client certificates required
   * and verified. SNICallback hands out the current context for clients that
   * send SNI; track() swaps the default context for those that do not.
   */
  serverOptions(): tls.TlsOptions {
    const { cert, key, ca } = this.loaded.pem;
    return {
      cert, key, ca, ...TLS_VERSION,
      requestCert: this.requireClientCert,
      rejectUnauthorized: true,
      SNICallback: (_name, cb) => cb(null, this.loaded.context),
    };
  }

  /** Keeps server's default SecureContext current across reloads, until the server closes. */
  track(server: tls.Server): void {
    if (this.servers.has(server)) return;
    this.servers.add(server);
    server.once('close', () => this.servers.delete(server));
  }

  /** Re-reads the files now. On failure the current context stays in use. */
  reload(): ReloadResult {
    let next: Loaded;
    try {
      next = this.load();
    } catch (err) {
      const error = err instanceof TlsContextError ? err : new TlsContextError(String((err as Error)?.message ?? err), { cause: err });
      this.emit('reloadError', error);
      return { ok: false, error };
    }
    this.loaded = next;
    this.gen++;
    const { cert, key, ca } = next.pem;
    for (const s of this.servers) s.setSecureContext({ cert, key, ca, ...TLS_VERSION });
    const result = { ok: true as const, generation: this.gen, spiffeId: next.identity.spiffeId, notAfter: next.notAfter };
    this.emit('reload', result);
    return result;
  }

  /** Starts watching the three files (idempotent). */
  watch(): void {
    if (this.watchers.length > 0) return;
    const byDir = new Map<string, Set<string>>();
    for (const f of [this.files.certFile, this.files.keyFile, this.files.caFile]) {
      const d = dirname(f);
      if (!byDir.has(d)) byDir.set(d, new Set());
      byDir.get(d)!.add(basename(f));
    }
    for (const [dir, names] of byDir) {
      const w = watch(dir, { persistent: false }, (_ev, name) => {
        // Kubernetes secret volumes swap a "..data" symlink rather than the files themselves.
        if (name === null || names.has(String(name)) || String(name).startsWith('..')) this.scheduleReload();
      });
      w.on('error', (err) => this.emit('reloadError', new TlsContextError(`watching ${dir}: ${err.message}`, { cause: err })));
      this.watchers.push(w);
    }
  }

  /** Stops watching; the current context stays usable. */
  close(): void {
    for (const w of this.watchers) w.close();
    this.watchers = [];
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = null;
    this.servers.clear();
  }

  private scheduleReload(): void {
    if (this.debounce) clearTimeout(this.debounce);
    this.debounce = setTimeout(() => { this.debounce = null; this.reload(); }, this.debounceMs);
    this.debounce.unref();
  }

  private read(path: string, what: string): string {
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw new TlsContextError(`${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
  }

  private load(): Loaded {
    const cert = this.read(this.files.certFile, 'certificate');
    const key = this.read(this.files.keyFile, 'key');
    const ca = this.read(this.files.caFile, 'CA bundle');
    let context: tls.SecureContext;
    try {
      // OpenSSL checks here that the PEM parses and that the key matches the certificate.
      context = tls.createSecureContext({ cert, key, ca, ...TLS_VERSION });
    } catch (err) {
      throw new TlsContextError(`cannot build TLS context from ${this.files.certFile} / ${this.files.keyFile} / ${this.files.caFile}: ${(err as Error).message}`, { cause: err });
    }
    let leaf: NodeX509Certificate;
    try {
      leaf = new NodeX509Certificate(cert);
    } catch (err) {
      throw new TlsContextError(`certificate ${this.files.certFile}: ${(err as Error).message}`, { cause: err });
    }
    const now = this.clock.now();
    const notBefore = new Date(leaf.validFrom);
    const notAfter = new Date(leaf.validTo);
    if (now < notBefore.getTime()) throw new TlsContextError(`certificate ${this.files.certFile} is not valid before ${notBefore.toISOString()}`);
    if (now > notAfter.getTime()) throw new TlsContextError(`certificate ${this.files.certFile} expired at ${notAfter.toISOString()}`);
    let identity: SpiffeId;
    try {
      identity = validateSvid(leaf);
    } catch (err) {
      if (err instanceof SvidError) throw new TlsContextError(`certificate ${this.files.certFile} is not an X509-SVID: ${err.message} (${err.code})`, { cause: err });
      throw err;
    }
    const bundleTrustDomains: string[] = [];
    let ders: ArrayBuffer[];
    try { ders = x509.PemConverter.decode(ca); } catch (err) { throw new TlsContextError(`CA bundle ${this.files.caFile}: ${(err as Error).message}`, { cause: err }); }
    if (ders.length === 0) throw new TlsContextError(`CA bundle ${this.files.caFile} holds no certificate`);
    for (const der of ders) {
      try {
        const id = validateSigningCertificate(new Uint8Array(der));
        if (id && !bundleTrustDomains.includes(id.trustDomain)) bundleTrustDomains.push(id.trustDomain);
      } catch (err) {
        throw new TlsContextError(`CA bundle ${this.files.caFile}: ${(err as Error).message}`, { cause: err });
      }
    }
    const tds = this.explicitTrustDomains ?? (bundleTrustDomains.length > 0 ? bundleTrustDomains : undefined);
    if (tds && !tds.includes(identity.trustDomain))
      throw new TlsContextError(`certificate ${this.files.certFile} is in trust domain ${identity.trustDomain}, not one of ${tds.join(', ')}`);
    return { pem: { cert, key, ca }, context, identity, notAfter, bundleTrustDomains };
  }
}

/**
 * Reloads every manager when the process gets `signal` (SIGHUP by default),
 * the way nginx and Envoy's hot-restart wrappers are driven. Returns a
 * function that removes the handler. Results arrive on each manager's
 * 'reload' / 'reloadError' events.
 */
export function reloadOnSignal(managers: Iterable<TlsContextManager>, signal: NodeJS.Signals = 'SIGHUP'): () => void {
  const list = [...managers];
  const handler = () => { for (const m of list) m.reload(); };
  process.on(signal, handler);
  return () => { process.off(signal, handler); };
}
