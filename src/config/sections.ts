// Validation of each section of the proxy config, with defaults applied.
// Every check records issues on the Checker and carries on; cross-references
// (routes -> listeners and clusters, listeners/clusters -> tls, policies ->
// listeners) are resolved at the end, once every name is known.
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import type { Checker, Path } from './checker.js';
import { isObj, parsePath } from './checker.js';
import { checkPolicies } from '../l7/policy/compile.js';
import { regexIssue } from '../util/regex.js';
import { HEADER_NAME, HOSTNAME, MAX_HEADER_NAME, MAX_HEADER_VALUE, MAX_HOSTNAME, MAX_PATH, PRECISE_HOSTNAME, controlCharIssue, pathValueIssue } from './wire.js';
import type { PolicySpec } from '../l7/policy/types.js';
import { parseSpiffeId, trustDomainError } from '../l7/tls/spiffe.js';
import { DEFAULT_ESCAPED_SLASH_ACTION, ESCAPED_SLASH_ACTIONS } from '../l7/proxy/canonical.js';
import { DEFAULT_MAX_PIPELINED, DEFAULT_OUTPUT_HIGH_WATER_MARK } from '../l7/server/server.js';
import type {
  AdminConfig, DrainConfig, LoggingConfig, ListenerConfig, TlsConfig, ClusterConfig, EndpointConfig, HTTPRoute, HTTPRouteRule, HTTPRouteMatch,
  HTTPRouteFilter, HTTPHeaderModifier, HTTPPathModifier, HTTPBackendRef, ParentReference, Transport, ListenerTransport, LbPolicy, HTTPMethod, RetryPolicyConfig,
} from './types.js';

export const TRANSPORTS = ['kernel', 'tap', 'afxdp'] as const;
export const LISTENER_TRANSPORTS = ['auto', 'kernel', 'tap', 'afxdp'] as const;
export const LB_POLICIES = ['round_robin', 'least_request', 'random', 'ring_hash', 'maglev'] as const;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;
const PATH_TYPES = ['Exact', 'PathPrefix', 'RegularExpression'] as const;
const VALUE_TYPES = ['Exact', 'RegularExpression'] as const;
const FILTER_TYPES = ['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite', 'RequestMirror'] as const;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_LABEL_MSG = 'must be a DNS-1123 label (lower case letters, digits and "-", at most 63 characters)';
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

// ---------------------------------------------------------------- admin, logging

export function checkAdmin(c: Checker, v: unknown): AdminConfig | null {
  if (v === undefined || v === null) return null;
  const p = ['admin'];
  const m = c.map(v, p, ['address', 'port']);
  if (!m) return null;
  return {
    address: c.opt(m, p, 'address', (x, q) => ipLiteral(c, x, q), '127.0.0.1'),
    port: c.opt(m, p, 'port', (x, q) => c.int(x, q, 1, 65535), 9901),
  };
}

export function checkLogging(c: Checker, v: unknown): LoggingConfig {
  const dflt: LoggingConfig = { level: 'info', format: 'json', path: 'stderr', accessLog: { enabled: true, path: 'stdout' }, showQueryStrings: false };
  if (v === undefined || v === null) return dflt;
  const p = ['logging'];
  const m = c.map(v, p, ['level', 'format', 'path', 'accessLog', 'showQueryStrings']);
  if (!m) return dflt;
  let accessLog = dflt.accessLog;
  if (m.accessLog !== undefined) {
    const ap = [...p, 'accessLog'];
    const a = c.map(m.accessLog, ap, ['enabled', 'path']);
    if (a) accessLog = {
      enabled: c.opt(a, ap, 'enabled', (x, q) => c.bool(x, q), true),
      path: c.opt(a, ap, 'path', (x, q) => c.str(x, q, { min: 1 }), 'stdout'),
    };
  }
  return {
    level: c.opt(m, p, 'level', (x, q) => c.str(x, q, { enum: ['debug', 'info', 'warn', 'error'] }) as LoggingConfig['level'] | undefined, 'info'),
    format: c.opt(m, p, 'format', (x, q) => c.str(x, q, { enum: ['json', 'text'] }) as LoggingConfig['format'] | undefined, 'json'),
    path: c.opt(m, p, 'path', (x, q) => c.str(x, q, { min: 1 }), 'stderr'),
    accessLog,
    showQueryStrings: c.opt(m, p, 'showQueryStrings', (x, q) => c.bool(x, q), false),
  };
}

/** `drain: { timeout: 30s }` (Envoy's --drain-time-s is 600 s; 30 s is the Kubernetes grace period). */
export function checkDrain(c: Checker, v: unknown): DrainConfig {
  const dflt: DrainConfig = { timeoutMs: 30_000 };
  if (v === undefined || v === null) return dflt;
  const p = ['drain'];
  const m = c.map(v, p, ['timeout']);
  if (!m) return dflt;
  return { timeoutMs: c.opt(m, p, 'timeout', (x, q) => c.dur(x, q, { min: 1, max: 3_600_000 }), 30_000) };
}

function ipLiteral(c: Checker, v: unknown, p: Path): string | undefined {
  const s = c.str(v, p);
  if (s === undefined) return undefined;
  if (isIP(s) === 0) { c.err(p, 'must be an IPv4 or IPv6 address'); return undefined; }
  return s;
}

// ---------------------------------------------------------------- tls

export function checkTls(c: Checker, v: unknown, baseDir: string): TlsConfig[] {
  if (v === undefined || v === null) return [];
  const list = c.list(v, ['tls']);
  if (!list) return [];
  const out: TlsConfig[] = [];
  list.forEach((item, i) => {
    const p = ['tls', i];
    const m = c.map(item, p, ['name', 'cert', 'key', 'ca', 'requireClientCert', 'trustDomains', 'watch'], ['name', 'cert', 'key', 'ca']);
    if (!m) return;
    const name = m.name !== undefined ? c.str(m.name, [...p, 'name'], { re: DNS_LABEL, reMsg: DNS_LABEL_MSG }) : undefined;
    const file = (k: string) => (m[k] !== undefined ? c.str(m[k], [...p, k], { min: 1 }) : undefined);
    const cert = file('cert'); const key = file('key'); const ca = file('ca');
    let trustDomains: string[] | null = null;
    if (m.trustDomains !== undefined) {
      const tl = c.list(m.trustDomains, [...p, 'trustDomains'], { min: 1 });
      if (tl) {
        trustDomains = [];
        tl.forEach((td, j) => {
          const s = c.str(td, [...p, 'trustDomains', j]);
          if (s === undefined) return;
          const e = trustDomainError(s);
          if (e) c.err([...p, 'trustDomains', j], e); else trustDomains!.push(s);
        });
      }
    }
    if (name === undefined || cert === undefined || key === undefined || ca === undefined) return;
    out.push({
      name,
      certFile: resolve(baseDir, cert), keyFile: resolve(baseDir, key), caFile: resolve(baseDir, ca),
      requireClientCert: c.opt(m, p, 'requireClientCert', (x, q) => c.bool(x, q), true),
      trustDomains,
      watch: c.opt(m, p, 'watch', (x, q) => c.bool(x, q), true),
    });
  });
  return out;
}

// ---------------------------------------------------------------- listeners

export function checkListeners(c: Checker, v: unknown): { listeners: ListenerConfig[]; index: Map<string, number> } {
  const listeners: ListenerConfig[] = [];
  const index = new Map<string, number>();
  if (v === undefined || v === null) { c.err(['listeners'], 'required: at least one listener'); return { listeners, index }; }
  const list = c.list(v, ['listeners'], { min: 1 });
  if (!list) return { listeners, index };
  list.forEach((item, i) => {
    const p = ['listeners', i];
    const m = c.map(item, p, ['name', 'address', 'port', 'transport', 'protocol', 'tls', 'timeouts', 'maxHeaderBytes', 'maxConnections', 'maxPipelined', 'outputHighWaterMark', 'upgrade', 'escapedSlashes'], ['name', 'port']);
    if (!m) return;
    const name = m.name !== undefined ? c.str(m.name, [...p, 'name'], { re: DNS_LABEL, reMsg: DNS_LABEL_MSG }) : undefined;
    const port = m.port !== undefined ? c.int(m.port, [...p, 'port'], 1, 65535) : undefined;
    const tls = c.opt<string | null>(m, p, 'tls', (x, q) => c.str(x, q, { re: DNS_LABEL, reMsg: `must name an entry of tls (${DNS_LABEL_MSG})` }), null);
    const protocol = c.opt(m, p, 'protocol', (x, q) => c.str(x, q, { enum: ['HTTP', 'HTTPS'] }) as 'HTTP' | 'HTTPS' | undefined, tls ? 'HTTPS' : 'HTTP');
    if (protocol === 'HTTPS' && !tls && m.tls === undefined) c.err([...p, 'tls'], 'required when protocol is HTTPS');
    if (protocol === 'HTTP' && tls) c.err([...p, 'protocol'], 'must be HTTPS when tls is set');
    let timeouts = { headerMs: 10_000, idleMs: 60_000, requestMs: 300_000 };
    if (m.timeouts !== undefined) {
      const tp = [...p, 'timeouts'];
      const t = c.map(m.timeouts, tp, ['header', 'idle', 'request']);
      if (t) timeouts = {
        headerMs: c.opt(t, tp, 'header', (x, q) => c.dur(x, q, { min: 1 }), 10_000),
        idleMs: c.opt(t, tp, 'idle', (x, q) => c.dur(x, q), 60_000),
        requestMs: c.opt(t, tp, 'request', (x, q) => c.dur(x, q), 300_000),
      };
    }
    const l: ListenerConfig = {
      name: name ?? '', port: port ?? 0, tls, protocol,
      address: c.opt(m, p, 'address', (x, q) => ipLiteral(c, x, q), '0.0.0.0'),
      transport: c.opt(m, p, 'transport', (x, q) => c.str(x, q, { enum: LISTENER_TRANSPORTS }) as ListenerTransport | undefined, 'auto'),
      timeouts,
      maxHeaderBytes: c.opt(m, p, 'maxHeaderBytes', (x, q) => c.int(x, q, 1024, 1 << 20), 16_384),
      maxConnections: c.opt(m, p, 'maxConnections', (x, q) => c.int(x, q, 1, 10_000_000), 16_384),
      // Pipelining backpressure (src/l7/server/server.ts): past either, the connection stops reading requests.
      maxPipelined: c.opt(m, p, 'maxPipelined', (x, q) => c.int(x, q, 1, 1024), DEFAULT_MAX_PIPELINED),
      outputHighWaterMark: c.opt(m, p, 'outputHighWaterMark', (x, q) => c.int(x, q, 1024, 64 << 20), DEFAULT_OUTPUT_HIGH_WATER_MARK),
      upgrade: m.upgrade !== undefined ? checkUpgrade(c, m.upgrade, [...p, 'upgrade']) : { types: ['websocket'], idleTimeoutMs: 300_000 },
      // Envoy's path_with_escaped_slashes_action; our default rejects (why: src/l7/proxy/canonical.ts).
      escapedSlashes: c.opt(m, p, 'escapedSlashes', (x, q) => c.str(x, q, { enum: [...ESCAPED_SLASH_ACTIONS] }) as ListenerConfig['escapedSlashes'] | undefined, DEFAULT_ESCAPED_SLASH_ACTION),
    };
    if (name !== undefined && index.has(name)) { c.err([...p, 'name'], `duplicate listener name ${JSON.stringify(name)} (first at listeners[${index.get(name)}])`); return; }
    if (name === undefined || port === undefined) return;
    const clash = listeners.findIndex((o) => o.transport === l.transport && o.port === l.port &&
      (o.address === l.address || o.address === '0.0.0.0' || l.address === '0.0.0.0' || o.address === '::' || l.address === '::'));
    if (clash >= 0) c.err([...p, 'port'], `${l.address}:${l.port} on ${l.transport} conflicts with listeners[${clash}] (${listeners[clash]!.name})`);
    index.set(name, listeners.length);
    listeners.push(l);
  });
  return { listeners, index };
}

/**
 * A listener's upgrade tunnelling. types: Upgrade protocol names (tokens,
 * RFC 9110 §7.8), matched case-insensitively; default [websocket] as Envoy
 * Gateway and Istio configure it; [] turns tunnelling off (upgrade requests
 * are then forwarded as plain requests). idleTimeout: Envoy's
 * stream_idle_timeout for tunnels, default 5m, "0s" for none.
 */
function checkUpgrade(c: Checker, v: unknown, p: Path): ListenerConfig['upgrade'] {
  const dflt = { types: ['websocket'], idleTimeoutMs: 300_000 };
  const m = c.map(v, p, ['types', 'idleTimeout']);
  if (!m) return dflt;
  let types = dflt.types;
  if (m.types !== undefined) {
    const tp = [...p, 'types'];
    const list = c.list(m.types, tp);
    if (list) {
      types = [];
      list.forEach((t, i) => {
        const name = c.str(t, [...tp, i], { re: HEADER_NAME, reMsg: 'must be an Upgrade protocol name (an HTTP token, e.g. websocket)' });
        if (name === undefined) return;
        const l = name.toLowerCase();
        if (l === 'connect') { c.err([...tp, i], 'CONNECT is a method, not an Upgrade protocol: it is answered 501'); return; }
        if (types.includes(l)) { c.err([...tp, i], `duplicate upgrade type ${JSON.stringify(name)} (types compare case-insensitively)`); return; }
        types.push(l);
      });
    }
  }
  return { types, idleTimeoutMs: c.opt(m, p, 'idleTimeout', (x, q) => c.dur(x, q), dflt.idleTimeoutMs) };
}

// ---------------------------------------------------------------- clusters

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

function checkEndpoint(c: Checker, v: unknown, p: Path, transport: Transport): EndpointConfig | undefined {
  let address: string | undefined; let port: number | undefined; let weight = 1;
  if (typeof v === 'string') {
    const m = /^(?:\[([^\]]+)\]|([^:[\]]+)):([0-9]{1,5})$/.exec(v);
    if (!m) { c.err(p, 'must be "host:port", "[v6]:port" or {address, port, weight}'); return undefined; }
    address = m[1] ?? m[2]!;
    port = Number(m[3]);
    if (port < 1 || port > 65535) { c.err(p, 'port must be in 1..65535'); return undefined; }
    if (m[1] !== undefined && isIP(address) !== 6) { c.err(p, `${address} is not an IPv6 address`); return undefined; }
  } else {
    const m = c.map(v, p, ['address', 'port', 'weight'], ['address', 'port']);
    if (!m) return undefined;
    address = m.address !== undefined ? c.str(m.address, [...p, 'address'], { min: 1 }) : undefined;
    port = m.port !== undefined ? c.int(m.port, [...p, 'port'], 1, 65535) : undefined;
    weight = c.opt(m, p, 'weight', (x, q) => c.int(x, q, 1, 1_000_000), 1);
  }
  if (address === undefined || port === undefined) return undefined;
  if (isIP(address) === 0) {
    if (!PRECISE_HOSTNAME.test(address.toLowerCase())) { c.err(typeof v === 'string' ? p : [...p, 'address'], 'must be an IP address or a DNS name'); return undefined; }
    if (transport !== 'kernel') { c.err(typeof v === 'string' ? p : [...p, 'address'], `must be an IP address on transport ${transport} (no resolver in the userspace stack)`); return undefined; }
  }
  return { address, port, weight };
}

export function checkClusters(c: Checker, v: unknown): { clusters: ClusterConfig[]; index: Map<string, number> } {
  const clusters: ClusterConfig[] = [];
  const index = new Map<string, number>();
  if (v === undefined || v === null) return { clusters, index };
  const list = c.list(v, ['clusters']);
  if (!list) return { clusters, index };
  list.forEach((item, i) => {
    const p = ['clusters', i];
    const m = c.map(item, p, ['name', 'transport', 'endpoints', 'lbPolicy', 'hashPolicy', 'ringHash', 'maglev', 'connectTimeout', 'tls', 'upstreamSpiffeId',
      'retryPolicy', 'retryBudget', 'outlierDetection', 'circuitBreakers', 'keepAlive'], ['name', 'endpoints']);
    if (!m) return;
    const name = m.name !== undefined ? c.str(m.name, [...p, 'name'], { re: DNS_LABEL, reMsg: DNS_LABEL_MSG }) : undefined;
    const transport = c.opt(m, p, 'transport', (x, q) => c.str(x, q, { enum: TRANSPORTS }) as Transport | undefined, 'kernel');
    const endpoints: EndpointConfig[] = [];
    if (m.endpoints !== undefined) {
      const el = c.list(m.endpoints, [...p, 'endpoints'], { min: 1 });
      el?.forEach((e, j) => { const ep = checkEndpoint(c, e, [...p, 'endpoints', j], transport); if (ep) endpoints.push(ep); });
    }
    const lbPolicy = c.opt(m, p, 'lbPolicy', (x, q) => c.str(x, q, { enum: LB_POLICIES }) as LbPolicy | undefined, 'round_robin');
    const hashing = lbPolicy === 'ring_hash' || lbPolicy === 'maglev';
    let hashPolicy: ClusterConfig['hashPolicy'] = [{ sourceIp: true }];
    if (m.hashPolicy !== undefined) {
      if (!hashing) c.err([...p, 'hashPolicy'], 'only applies to lbPolicy ring_hash or maglev');
      const hl = c.list(m.hashPolicy, [...p, 'hashPolicy'], { min: 1, max: 8 });
      if (hl) {
        hashPolicy = [];
        hl.forEach((h, j) => {
          const hp = [...p, 'hashPolicy', j];
          const hm = c.map(h, hp, ['header', 'sourceIp']);
          if (!hm) return;
          if ((hm.header === undefined) === (hm.sourceIp === undefined)) { c.err(hp, 'must have exactly one of header, sourceIp'); return; }
          if (hm.header !== undefined) { const hn = c.str(hm.header, [...hp, 'header'], { re: HEADER_NAME, reMsg: 'must be a header name' }); if (hn) hashPolicy.push({ header: hn.toLowerCase() }); }
          else if (c.bool(hm.sourceIp, [...hp, 'sourceIp']) === true) hashPolicy.push({ sourceIp: true });
          else c.err([...hp, 'sourceIp'], 'must be true (omit the entry instead)');
        });
      }
    }
    let ringHash = { minimumRingSize: 1024, maximumRingSize: 8_388_608 };
    if (m.ringHash !== undefined) {
      const rp = [...p, 'ringHash'];
      if (lbPolicy !== 'ring_hash') c.err(rp, 'only applies to lbPolicy ring_hash');
      const r = c.map(m.ringHash, rp, ['minimumRingSize', 'maximumRingSize']);
      if (r) {
        ringHash = {
          minimumRingSize: c.opt(r, rp, 'minimumRingSize', (x, q) => c.int(x, q, 1, 8_388_608), 1024),
          maximumRingSize: c.opt(r, rp, 'maximumRingSize', (x, q) => c.int(x, q, 1, 8_388_608), 8_388_608),
        };
        if (ringHash.minimumRingSize > ringHash.maximumRingSize) c.err([...rp, 'minimumRingSize'], 'must not exceed maximumRingSize');
      }
    }
    let maglev = { tableSize: 65_537 };
    if (m.maglev !== undefined) {
      const mp = [...p, 'maglev'];
      if (lbPolicy !== 'maglev') c.err(mp, 'only applies to lbPolicy maglev');
      const mg = c.map(m.maglev, mp, ['tableSize']);
      if (mg) {
        const ts = c.opt(mg, mp, 'tableSize', (x, q) => c.int(x, q, 1, 5_000_011), 65_537);
        if (!isPrime(ts)) c.err([...mp, 'tableSize'], 'must be a prime number (Maglev needs it; Envoy uses 65537)');
        else maglev = { tableSize: ts };
        if (endpoints.length > 0 && ts < endpoints.length * 100) c.err([...mp, 'tableSize'], `should be at least 100 x the number of endpoints (${endpoints.length * 100})`);
      }
    }
    const tls = c.opt<string | null>(m, p, 'tls', (x, q) => c.str(x, q, { re: DNS_LABEL, reMsg: `must name an entry of tls (${DNS_LABEL_MSG})` }), null);
    const upstreamSpiffeId = c.opt<string | null>(m, p, 'upstreamSpiffeId', (x, q) => {
      const s = c.str(x, q);
      if (s === undefined) return undefined;
      try { parseSpiffeId(s); } catch (err) { c.err(q, (err as Error).message); return undefined; }
      return s;
    }, null);
    if (upstreamSpiffeId !== null && tls === null && m.tls === undefined) c.err([...p, 'upstreamSpiffeId'], 'needs tls (upstream mTLS) to be set');

    // retries
    const retryPolicy: RetryPolicyConfig = {
      retryOn: { connectFailure: true, reset: false, statusCodes: [502, 503, 504] },
      numRetries: 1, perTryTimeoutMs: 0, backoff: { baseIntervalMs: 25, maxIntervalMs: 250 },
    };
    if (m.retryPolicy !== undefined) {
      const rp = [...p, 'retryPolicy'];
      const r = c.map(m.retryPolicy, rp, ['retryOn', 'numRetries', 'perTryTimeout', 'retryBackOff']);
      if (r) {
        if (r.retryOn !== undefined) {
          const rl = c.list(r.retryOn, [...rp, 'retryOn']);
          if (rl) {
            const on = { connectFailure: false, reset: false, statusCodes: new Set<number>() };
            rl.forEach((x, j) => {
              const q = [...rp, 'retryOn', j];
              if (typeof x === 'number') { const n = c.int(x, q, 500, 599); if (n !== undefined) on.statusCodes.add(n); return; }
              const s = c.str(x, q, { enum: ['connect-failure', 'reset', 'gateway-error', '5xx'] });
              if (s === 'connect-failure') on.connectFailure = true;
              else if (s === 'reset') on.reset = true;
              else if (s === 'gateway-error') [502, 503, 504].forEach((n) => on.statusCodes.add(n));
              else if (s === '5xx') for (let n = 500; n <= 599; n++) on.statusCodes.add(n);
            });
            retryPolicy.retryOn = { connectFailure: on.connectFailure, reset: on.reset, statusCodes: [...on.statusCodes].sort((a, b) => a - b) };
          }
        }
        retryPolicy.numRetries = c.opt(r, rp, 'numRetries', (x, q) => c.int(x, q, 0, 10), 1);
        retryPolicy.perTryTimeoutMs = c.opt(r, rp, 'perTryTimeout', (x, q) => c.dur(x, q), 0);
        if (r.retryBackOff !== undefined) {
          const bp = [...rp, 'retryBackOff'];
          const b = c.map(r.retryBackOff, bp, ['baseInterval', 'maxInterval'], ['baseInterval']);
          if (b) {
            const base = c.opt(b, bp, 'baseInterval', (x, q) => c.dur(x, q, { min: 1 }), 25);
            const max = c.opt(b, bp, 'maxInterval', (x, q) => c.dur(x, q, { min: 1 }), base * 10);
            if (max < base) c.err([...bp, 'maxInterval'], 'must be at least baseInterval');
            retryPolicy.backoff = { baseIntervalMs: base, maxIntervalMs: max };
          }
        }
      }
    }
    let retryBudget: ClusterConfig['retryBudget'] = { budgetPercent: 20, minRetryConcurrency: 3 };
    if (m.retryBudget !== undefined) {
      const bp = [...p, 'retryBudget'];
      const b = c.map(m.retryBudget, bp, ['enabled', 'budgetPercent', 'minRetryConcurrency']);
      if (b) {
        const enabled = c.opt(b, bp, 'enabled', (x, q) => c.bool(x, q), true);
        const pct = c.opt(b, bp, 'budgetPercent', (x, q) => {
          if (typeof x !== 'number' || !(x >= 0 && x <= 100)) { c.err(q, 'must be a number 0..100'); return undefined; }
          return x;
        }, 20);
        retryBudget = enabled ? { budgetPercent: pct, minRetryConcurrency: c.opt(b, bp, 'minRetryConcurrency', (x, q) => c.int(x, q, 0, 1_000_000), 3) } : null;
      }
    }
    let outlierDetection = { enabled: true, consecutive5xx: 5, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10 };
    if (m.outlierDetection !== undefined) {
      const op = [...p, 'outlierDetection'];
      const o = c.map(m.outlierDetection, op, ['enabled', 'consecutive5xx', 'interval', 'baseEjectionTime', 'maxEjectionPercent']);
      if (o) outlierDetection = {
        enabled: c.opt(o, op, 'enabled', (x, q) => c.bool(x, q), true),
        consecutive5xx: c.opt(o, op, 'consecutive5xx', (x, q) => c.int(x, q, 1, 1_000_000), 5),
        intervalMs: c.opt(o, op, 'interval', (x, q) => c.dur(x, q, { min: 1 }), 10_000),
        baseEjectionTimeMs: c.opt(o, op, 'baseEjectionTime', (x, q) => c.dur(x, q, { min: 1 }), 30_000),
        maxEjectionPercent: c.opt(o, op, 'maxEjectionPercent', (x, q) => c.int(x, q, 0, 100), 10),
      };
    }
    let circuitBreakers = { maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 1024, maxRetries: 3 };
    if (m.circuitBreakers !== undefined) {
      const cp = [...p, 'circuitBreakers'];
      const cb = c.map(m.circuitBreakers, cp, ['maxConnections', 'maxPendingRequests', 'maxRequests', 'maxRetries']);
      if (cb) circuitBreakers = {
        maxConnections: c.opt(cb, cp, 'maxConnections', (x, q) => c.int(x, q, 1, 1e9), 1024),
        maxPendingRequests: c.opt(cb, cp, 'maxPendingRequests', (x, q) => c.int(x, q, 0, 1e9), 1024),
        maxRequests: c.opt(cb, cp, 'maxRequests', (x, q) => c.int(x, q, 1, 1e9), 1024),
        maxRetries: c.opt(cb, cp, 'maxRetries', (x, q) => c.int(x, q, 0, 1e9), 3),
      };
    }
    let keepAlive = { maxIdlePerEndpoint: 64, idleTimeoutMs: 60_000 };
    if (m.keepAlive !== undefined) {
      const kp = [...p, 'keepAlive'];
      const k = c.map(m.keepAlive, kp, ['maxIdlePerEndpoint', 'idleTimeout']);
      if (k) keepAlive = {
        maxIdlePerEndpoint: c.opt(k, kp, 'maxIdlePerEndpoint', (x, q) => c.int(x, q, 0, 1_000_000), 64),
        idleTimeoutMs: c.opt(k, kp, 'idleTimeout', (x, q) => c.dur(x, q), 60_000),
      };
    }
    if (name === undefined) return;
    if (index.has(name)) { c.err([...p, 'name'], `duplicate cluster name ${JSON.stringify(name)} (first at clusters[${index.get(name)}])`); return; }
    index.set(name, clusters.length);
    clusters.push({
      name, transport, endpoints, lbPolicy, hashPolicy, ringHash, maglev,
      connectTimeoutMs: c.opt(m, p, 'connectTimeout', (x, q) => c.dur(x, q, { min: 1 }), 5_000),
      tls, upstreamSpiffeId, retryPolicy, retryBudget, outlierDetection, circuitBreakers, keepAlive,
    });
  });
  return { clusters, index };
}

// ---------------------------------------------------------------- routes (Gateway API HTTPRoute v1)

function checkHeaderModifier(c: Checker, v: unknown, p: Path): HTTPHeaderModifier | undefined {
  const m = c.map(v, p, ['set', 'add', 'remove']);
  if (!m) return undefined;
  const out: HTTPHeaderModifier = { set: [], add: [], remove: [] };
  for (const k of ['set', 'add'] as const) {
    if (m[k] === undefined) continue;
    const l = c.list(m[k], [...p, k], { max: 16 });
    const seen = new Set<string>();
    l?.forEach((h, j) => {
      const hp = [...p, k, j];
      const hm = c.map(h, hp, ['name', 'value'], ['name', 'value']);
      if (!hm) return;
      const name = hm.name !== undefined ? c.str(hm.name, [...hp, 'name'], { re: HEADER_NAME, reMsg: 'must be a valid header name', max: MAX_HEADER_NAME }) : undefined;
      const value = hm.value !== undefined ? c.str(hm.value, [...hp, 'value'], { min: 1, max: MAX_HEADER_VALUE }) : undefined;
      const bad = value === undefined ? null : controlCharIssue(value);
      if (bad) { c.err([...hp, 'value'], bad); return; }
      if (name === undefined || value === undefined) return;
      if (seen.has(name.toLowerCase())) c.err([...hp, 'name'], `duplicate header ${name} in ${k} (names are case-insensitive)`);
      seen.add(name.toLowerCase());
      out[k].push({ name, value });
    });
  }
  if (m.remove !== undefined) {
    const l = c.list(m.remove, [...p, 'remove'], { max: 16 });
    const seen = new Set<string>();
    l?.forEach((h, j) => {
      const name = c.str(h, [...p, 'remove', j], { re: HEADER_NAME, reMsg: 'must be a valid header name', max: MAX_HEADER_NAME });
      if (name === undefined) return;
      if (seen.has(name.toLowerCase())) c.err([...p, 'remove', j], `duplicate header ${name}`);
      seen.add(name.toLowerCase());
      out.remove.push(name);
    });
  }
  return out;
}

function checkPathModifier(c: Checker, v: unknown, p: Path): HTTPPathModifier | undefined {
  const m = c.map(v, p, ['type', 'replaceFullPath', 'replacePrefixMatch'], ['type']);
  if (!m) return undefined;
  const type = m.type !== undefined ? c.str(m.type, [...p, 'type'], { enum: ['ReplaceFullPath', 'ReplacePrefixMatch'] }) as HTTPPathModifier['type'] | undefined : undefined;
  if (type === undefined) return undefined;
  const want = type === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
  const other = type === 'ReplaceFullPath' ? 'replacePrefixMatch' : 'replaceFullPath';
  if (m[other] !== undefined) c.err([...p, other], `must not be set when type is ${type}`);
  if (m[want] === undefined) { c.err([...p, want], `required when type is ${type}`); return undefined; }
  const val = c.str(m[want], [...p, want], { max: MAX_PATH });
  if (val === undefined) return undefined;
  const issue = pathValueIssue(val);
  if (issue) { c.err([...p, want], issue); return undefined; }
  return type === 'ReplaceFullPath' ? { type, replaceFullPath: val } : { type, replacePrefixMatch: val };
}

interface FilterCtx { mirrorRefs: { name: string; path: Path }[] }

function checkFilter(c: Checker, v: unknown, p: Path, fx: FilterCtx, allowed: readonly string[]): HTTPRouteFilter | undefined {
  const m = c.map(v, p, ['type', 'requestHeaderModifier', 'responseHeaderModifier', 'requestRedirect', 'urlRewrite', 'requestMirror'], ['type']);
  if (!m) return undefined;
  const type = m.type !== undefined ? c.str(m.type, [...p, 'type'], { enum: allowed }) : undefined;
  if (type === undefined) return undefined;
  const field = type === 'URLRewrite' ? 'urlRewrite' : type[0]!.toLowerCase() + type.slice(1);
  for (const k of ['requestHeaderModifier', 'responseHeaderModifier', 'requestRedirect', 'urlRewrite', 'requestMirror'])
    if (k !== field && m[k] !== undefined) c.err([...p, k], `must not be set when type is ${type}`);
  if (m[field] === undefined) { c.err([...p, field], `required when type is ${type}`); return undefined; }
  const fp = [...p, field];
  switch (type) {
    case 'RequestHeaderModifier': { const h = checkHeaderModifier(c, m[field], fp); return h && { type, requestHeaderModifier: h }; }
    case 'ResponseHeaderModifier': { const h = checkHeaderModifier(c, m[field], fp); return h && { type, responseHeaderModifier: h }; }
    case 'RequestRedirect': {
      const r = c.map(m[field], fp, ['scheme', 'hostname', 'path', 'port', 'statusCode']);
      if (!r) return undefined;
      return {
        type,
        requestRedirect: {
          scheme: c.opt<'http' | 'https' | null>(r, fp, 'scheme', (x, q) => c.str(x, q, { enum: ['http', 'https'] }) as 'http' | 'https' | undefined, null),
          hostname: c.opt<string | null>(r, fp, 'hostname', (x, q) => c.str(x, q, { re: PRECISE_HOSTNAME, reMsg: 'must be a lower-case DNS name without wildcard', max: MAX_HOSTNAME }), null),
          path: c.opt<HTTPPathModifier | null>(r, fp, 'path', (x, q) => checkPathModifier(c, x, q), null),
          port: c.opt<number | null>(r, fp, 'port', (x, q) => c.int(x, q, 1, 65535), null),
          statusCode: c.opt(r, fp, 'statusCode', (x, q) => {
            if (x !== 301 && x !== 302 && x !== 303 && x !== 307 && x !== 308) { c.err(q, 'must be one of 301, 302, 303, 307, 308'); return undefined; }
            return x;
          }, 302 as const),
        },
      };
    }
    case 'URLRewrite': {
      const r = c.map(m[field], fp, ['hostname', 'path']);
      if (!r) return undefined;
      return {
        type,
        urlRewrite: {
          hostname: c.opt<string | null>(r, fp, 'hostname', (x, q) => c.str(x, q, { re: PRECISE_HOSTNAME, reMsg: 'must be a lower-case DNS name without wildcard', max: MAX_HOSTNAME }), null),
          path: c.opt<HTTPPathModifier | null>(r, fp, 'path', (x, q) => checkPathModifier(c, x, q), null),
        },
      };
    }
    case 'RequestMirror': {
      const r = c.map(m[field], fp, ['backendRef', 'percent', 'fraction'], ['backendRef']);
      if (!r) return undefined;
      if (r.percent !== undefined && r.fraction !== undefined) c.err([...fp, 'fraction'], 'percent and fraction are mutually exclusive');
      let percent = c.opt(r, fp, 'percent', (x, q) => c.int(x, q, 0, 100), 100);
      if (r.fraction !== undefined) {
        const fr = c.map(r.fraction, [...fp, 'fraction'], ['numerator', 'denominator'], ['numerator']);
        if (fr) {
          const num = c.opt(fr, [...fp, 'fraction'], 'numerator', (x, q) => c.int(x, q, 0, 1_000_000), 0);
          const den = c.opt(fr, [...fp, 'fraction'], 'denominator', (x, q) => c.int(x, q, 1, 1_000_000), 100);
          if (num > den) c.err([...fp, 'fraction', 'numerator'], 'must not exceed denominator');
          percent = Math.min(100, (num / den) * 100);
        }
      }
      const bp = [...fp, 'backendRef'];
      const b = r.backendRef !== undefined ? c.map(r.backendRef, bp, ['name', 'port', 'kind', 'group'], ['name']) : undefined;
      if (!b) return undefined;
      checkServiceKind(c, b, bp);
      const name = b.name !== undefined ? c.str(b.name, [...bp, 'name'], { re: DNS_LABEL, reMsg: `must name a cluster (${DNS_LABEL_MSG})` }) : undefined;
      if (name === undefined) return undefined;
      fx.mirrorRefs.push({ name, path: [...bp, 'name'] });
      return { type, requestMirror: { backendRef: { name, port: c.opt<number | null>(b, bp, 'port', (x, q) => c.int(x, q, 1, 65535), null) }, percent } };
    }
  }
  return undefined;
}

/** backendRefs may spell out the default kind (Service, core group); anything else is not something we can route to. */
function checkServiceKind(c: Checker, b: Record<string, unknown>, p: Path): void {
  if (b.kind !== undefined && b.kind !== 'Service') c.err([...p, 'kind'], 'only kind Service (a cluster of this file) is supported');
  if (b.group !== undefined && b.group !== '') c.err([...p, 'group'], 'only the core group ("") is supported');
}

function checkMatch(c: Checker, v: unknown, p: Path): HTTPRouteMatch | undefined {
  const m = c.map(v, p, ['path', 'headers', 'queryParams', 'method']);
  if (!m) return undefined;
  let path: HTTPRouteMatch['path'] = { type: 'PathPrefix', value: '/' };
  if (m.path !== undefined) {
    const pp = [...p, 'path'];
    const pm = c.map(m.path, pp, ['type', 'value']);
    if (pm) {
      const type = c.opt(pm, pp, 'type', (x, q) => c.str(x, q, { enum: PATH_TYPES }) as HTTPRouteMatch['path']['type'] | undefined, 'PathPrefix');
      const value = c.opt(pm, pp, 'value', (x, q) => c.str(x, q, { max: MAX_PATH, min: 1 }), '/');
      const issue = type === 'RegularExpression' ? regexIssue(value) : pathValueIssue(value);
      if (issue) c.err([...pp, 'value'], issue);
      path = { type, value };
    }
  }
  const valueMatches = (key: 'headers' | 'queryParams') => {
    const out: HTTPRouteMatch['headers'] = [];
    if (m[key] === undefined) return out;
    const l = c.list(m[key], [...p, key], { max: 16 });
    const seen = new Set<string>();
    l?.forEach((h, j) => {
      const hp = [...p, key, j];
      const hm = c.map(h, hp, ['type', 'name', 'value'], ['name', 'value']);
      if (!hm) return;
      const type = c.opt(hm, hp, 'type', (x, q) => c.str(x, q, { enum: VALUE_TYPES }) as 'Exact' | 'RegularExpression' | undefined, 'Exact');
      const name = hm.name !== undefined ? c.str(hm.name, [...hp, 'name'], { re: HEADER_NAME, reMsg: 'must be a valid header/parameter name', max: MAX_HEADER_NAME }) : undefined;
      const value = hm.value !== undefined ? c.str(hm.value, [...hp, 'value'], { max: 4096 }) : undefined;
      if (value !== undefined && type === 'RegularExpression') { const e = regexIssue(value); if (e) c.err([...hp, 'value'], e); }
      if (name === undefined || value === undefined) return;
      // header names are case-insensitive; query parameter names are not (Gateway API)
      const key2 = key === 'headers' ? name.toLowerCase() : name;
      if (seen.has(key2)) c.err([...hp, 'name'], `duplicate ${key === 'headers' ? 'header' : 'query parameter'} ${name} in one match`);
      seen.add(key2);
      out.push({ type, name, value });
    });
    return out;
  };
  return {
    path,
    headers: valueMatches('headers'),
    queryParams: valueMatches('queryParams'),
    method: c.opt<HTTPMethod | null>(m, p, 'method', (x, q) => c.str(x, q, { enum: METHODS }) as HTTPMethod | undefined, null),
  };
}

export interface RouteRefs {
  parents: { name: string; port: number | null; path: Path }[];
  backends: { name: string; path: Path }[];
}

export function checkRoutes(c: Checker, v: unknown): { routes: HTTPRoute[]; refs: RouteRefs } {
  const routes: HTTPRoute[] = [];
  const refs: RouteRefs = { parents: [], backends: [] };
  if (v === undefined || v === null) return { routes, refs };
  const list = c.list(v, ['routes']);
  if (!list) return { routes, refs };
  const names = new Map<string, number>();
  list.forEach((item, i) => {
    const p = ['routes', i];
    const m = c.map(item, p, ['apiVersion', 'kind', 'metadata', 'spec', 'status'], ['apiVersion', 'kind', 'metadata', 'spec']);
    if (!m) return;
    if (m.apiVersion !== undefined) c.str(m.apiVersion, [...p, 'apiVersion'], { enum: ['gateway.networking.k8s.io/v1'] });
    if (m.kind !== undefined) c.str(m.kind, [...p, 'kind'], { enum: ['HTTPRoute'] });
    let metadata: HTTPRoute['metadata'] | undefined;
    if (m.metadata !== undefined) {
      const mp = [...p, 'metadata'];
      const md = c.map(m.metadata, mp, ['name', 'namespace', 'labels', 'annotations'], ['name']);
      if (md) {
        for (const k of ['labels', 'annotations']) {
          if (md[k] === undefined) continue;
          const lm = md[k];
          if (!isObj(lm)) c.err([...mp, k], 'must be a mapping of strings');
          else for (const [lk, lv] of Object.entries(lm)) if (typeof lv !== 'string') c.err([...mp, k, lk], 'must be a string');
        }
        const name = md.name !== undefined ? c.str(md.name, [...mp, 'name'], { re: DNS_SUBDOMAIN, reMsg: 'must be a DNS-1123 subdomain', max: 253 }) : undefined;
        const namespace = c.opt(md, mp, 'namespace', (x, q) => c.str(x, q, { re: DNS_LABEL, reMsg: DNS_LABEL_MSG }), 'default');
        if (name !== undefined) {
          const key = `${namespace}/${name}`;
          if (names.has(key)) c.err([...mp, 'name'], `duplicate HTTPRoute ${key} (first at routes[${names.get(key)}])`);
          names.set(key, i);
          metadata = { name, namespace };
        }
      }
    }
    if (m.spec === undefined) return;
    const sp = [...p, 'spec'];
    const s = c.map(m.spec, sp, ['parentRefs', 'hostnames', 'rules'], ['parentRefs']);
    if (!s) return;
    const parentRefs: ParentReference[] = [];
    if (s.parentRefs !== undefined) {
      const pl = c.list(s.parentRefs, [...sp, 'parentRefs'], { min: 1, max: 32 });
      pl?.forEach((r, j) => {
        const rp = [...sp, 'parentRefs', j];
        const rm = c.map(r, rp, ['name', 'port', 'kind', 'group'], ['name']);
        if (!rm) return;
        if (rm.kind !== undefined && rm.kind !== 'Listener') c.err([...rp, 'kind'], 'only kind Listener (a listener of this file) is supported');
        if (rm.group !== undefined) c.err([...rp, 'group'], 'not supported: parentRefs name listeners of this file');
        const name = rm.name !== undefined ? c.str(rm.name, [...rp, 'name'], { re: DNS_LABEL, reMsg: `must name a listener (${DNS_LABEL_MSG})` }) : undefined;
        const port = c.opt<number | null>(rm, rp, 'port', (x, q) => c.int(x, q, 1, 65535), null);
        if (name === undefined) return;
        parentRefs.push({ name, port });
        refs.parents.push({ name, port, path: [...rp, 'name'] });
      });
    }
    const hostnames: string[] = [];
    if (s.hostnames !== undefined) {
      const hl = c.list(s.hostnames, [...sp, 'hostnames'], { max: 16 });
      hl?.forEach((h, j) => {
        const msg = 'must be a lower-case DNS name, optionally with a leading "*." (IP addresses are not allowed)';
        if (typeof h === 'string' && isIP(h) !== 0) { c.err([...sp, 'hostnames', j], msg); return; }
        const hn = c.str(h, [...sp, 'hostnames', j], { re: HOSTNAME, reMsg: msg, max: MAX_HOSTNAME });
        if (hn !== undefined) hostnames.push(hn);
      });
    }
    const rules: HTTPRouteRule[] = [];
    const fx: FilterCtx = { mirrorRefs: [] };
    // Gateway API defaults rules to one catch-all rule without backends (every request 500): refuse that here.
    if (s.rules === undefined) c.err([...sp, 'rules'], 'required: a route without rules has no backends');
    const rl = s.rules === undefined ? [] : c.list(s.rules, [...sp, 'rules'], { min: 1, max: 16 });
    rl?.forEach((r, j) => {
      const rp = [...sp, 'rules', j];
      const rm = c.map(r, rp, ['name', 'matches', 'filters', 'backendRefs', 'timeouts']);
      if (!rm) return;
      const matches: HTTPRouteMatch[] = [];
      if (rm.matches !== undefined) {
        const ml = c.list(rm.matches, [...rp, 'matches'], { max: 64 });
        ml?.forEach((x, k) => { const mm = checkMatch(c, x, [...rp, 'matches', k]); if (mm) matches.push(mm); });
      }
      if (matches.length === 0 && (rm.matches === undefined || (Array.isArray(rm.matches) && rm.matches.length === 0)))
        matches.push({ path: { type: 'PathPrefix', value: '/' }, headers: [], queryParams: [], method: null });
      const filters: HTTPRouteFilter[] = [];
      if (rm.filters !== undefined) {
        const fl = c.list(rm.filters, [...rp, 'filters'], { max: 16 });
        fl?.forEach((f, k) => { const ff = checkFilter(c, f, [...rp, 'filters', k], fx, FILTER_TYPES); if (ff) filters.push(ff); });
        const count = (t: string) => filters.filter((f) => f.type === t).length;
        if (count('RequestHeaderModifier') > 1) c.err([...rp, 'filters'], 'RequestHeaderModifier must not appear more than once');
        if (count('ResponseHeaderModifier') > 1) c.err([...rp, 'filters'], 'ResponseHeaderModifier must not appear more than once');
        if (count('RequestRedirect') > 1 || count('URLRewrite') > 1) c.err([...rp, 'filters'], 'RequestRedirect and URLRewrite must not appear more than once');
        if (count('RequestRedirect') > 0 && count('URLRewrite') > 0) c.err([...rp, 'filters'], 'RequestRedirect and URLRewrite cannot be used together');
        const prefixRewrite = filters.some((f) => (f.type === 'RequestRedirect' && f.requestRedirect.path?.type === 'ReplacePrefixMatch') ||
          (f.type === 'URLRewrite' && f.urlRewrite.path?.type === 'ReplacePrefixMatch'));
        if (prefixRewrite && !(matches.length === 1 && matches[0]!.path.type === 'PathPrefix'))
          c.err([...rp, 'filters'], 'ReplacePrefixMatch needs exactly one match, of path type PathPrefix');
      }
      const backendRefs: HTTPBackendRef[] = [];
      if (rm.backendRefs !== undefined) {
        const bl = c.list(rm.backendRefs, [...rp, 'backendRefs'], { max: 16 });
        bl?.forEach((b, k) => {
          const bp = [...rp, 'backendRefs', k];
          const bm = c.map(b, bp, ['name', 'port', 'weight', 'filters', 'kind', 'group'], ['name']);
          if (!bm) return;
          checkServiceKind(c, bm, bp);
          const name = bm.name !== undefined ? c.str(bm.name, [...bp, 'name'], { re: DNS_LABEL, reMsg: `must name a cluster (${DNS_LABEL_MSG})` }) : undefined;
          const bfilters: HTTPRouteFilter[] = [];
          if (bm.filters !== undefined) {
            c.list(bm.filters, [...bp, 'filters'], { max: 16 })?.forEach((f, n) => {
              const ff = checkFilter(c, f, [...bp, 'filters', n], fx, ['RequestHeaderModifier', 'ResponseHeaderModifier']);
              if (ff) bfilters.push(ff);
            });
          }
          if (name === undefined) return;
          refs.backends.push({ name, path: [...bp, 'name'] });
          backendRefs.push({
            name,
            port: c.opt<number | null>(bm, bp, 'port', (x, q) => c.int(x, q, 1, 65535), null),
            weight: c.opt(bm, bp, 'weight', (x, q) => c.int(x, q, 0, 1_000_000), 1),
            filters: bfilters,
          });
        });
      }
      const hasRedirect = filters.some((f) => f.type === 'RequestRedirect');
      if (backendRefs.length === 0 && !hasRedirect && rm.backendRefs === undefined)
        c.err([...rp, 'backendRefs'], 'required unless the rule redirects (RequestRedirect); without backends every request would get 500');
      if (hasRedirect && backendRefs.length > 0) c.err([...rp, 'backendRefs'], 'must be empty when the rule redirects');
      let timeouts = { requestMs: 15_000, backendRequestMs: 0 };
      if (rm.timeouts !== undefined) {
        const tp = [...rp, 'timeouts'];
        const t = c.map(rm.timeouts, tp, ['request', 'backendRequest']);
        if (t) {
          timeouts = {
            requestMs: c.opt(t, tp, 'request', (x, q) => c.dur(x, q), 15_000),
            backendRequestMs: c.opt(t, tp, 'backendRequest', (x, q) => c.dur(x, q), 0),
          };
          if (timeouts.requestMs !== 0 && timeouts.backendRequestMs > timeouts.requestMs)
            c.err([...tp, 'backendRequest'], 'must not be longer than request (Gateway API)');
        }
      }
      rules.push({
        name: c.opt<string | null>(rm, rp, 'name', (x, q) => c.str(x, q, { re: DNS_LABEL, reMsg: DNS_LABEL_MSG }), null),
        matches, filters, backendRefs, timeouts,
      });
    });
    for (const r of fx.mirrorRefs) refs.backends.push(r);
    if (!metadata) return;
    routes.push({ apiVersion: 'gateway.networking.k8s.io/v1', kind: 'HTTPRoute', metadata, spec: { parentRefs, hostnames, rules } });
  });
  return { routes, refs };
}

// ---------------------------------------------------------------- policies

const POLICY_SHAPE = {
  policy: ['name', 'selector', 'ingress', 'ingressDeny'],
  selector: ['listeners'],
  ingress: ['fromIdentities', 'fromCIDR', 'fromCIDRSet', 'toPorts'],
  identity: ['spiffeId', 'trustDomain', 'pathPrefix'],
  cidrSet: ['cidr', 'except'],
  portRule: ['ports', 'rules'],
  port: ['port', 'protocol'],
  rules: ['http'],
  http: ['method', 'path', 'host', 'headers', 'headerMatches'],
  headerMatch: ['name', 'value'],
} as const;

/** Shape (fields and types) here; meaning (IDs, CIDRs, regexes, ports) in the policy compiler. */
export function checkPoliciesSection(c: Checker, v: unknown): { policies: PolicySpec[]; selectorRefs: { name: string; path: Path }[] } {
  const selectorRefs: { name: string; path: Path }[] = [];
  if (v === undefined || v === null) return { policies: [], selectorRefs };
  const list = c.list(v, ['policies']);
  if (!list) return { policies: [], selectorRefs };
  const before = c.issues.length;
  const strList = (x: unknown, p: Path) => c.list(x, p)?.forEach((s, k) => c.str(s, [...p, k]));
  const peers = (r: Record<string, unknown>, p: Path) => {
    if (r.fromIdentities !== undefined) c.list(r.fromIdentities, [...p, 'fromIdentities'])?.forEach((x, k) => {
      const q = [...p, 'fromIdentities', k];
      const m = c.map(x, q, POLICY_SHAPE.identity);
      if (m) for (const f of POLICY_SHAPE.identity) if (m[f] !== undefined) c.str(m[f], [...q, f]);
    });
    if (r.fromCIDR !== undefined) strList(r.fromCIDR, [...p, 'fromCIDR']);
    if (r.fromCIDRSet !== undefined) c.list(r.fromCIDRSet, [...p, 'fromCIDRSet'])?.forEach((x, k) => {
      const q = [...p, 'fromCIDRSet', k];
      const m = c.map(x, q, POLICY_SHAPE.cidrSet, ['cidr']);
      if (m?.cidr !== undefined) c.str(m.cidr, [...q, 'cidr']);
      if (m?.except !== undefined) strList(m.except, [...q, 'except']);
    });
  };
  const ports = (x: unknown, p: Path) => c.list(x, p)?.forEach((pt, k) => {
    const q = [...p, k];
    const m = c.map(pt, q, POLICY_SHAPE.port, ['port']);
    if (m?.port !== undefined && typeof m.port !== 'number' && typeof m.port !== 'string') c.err([...q, 'port'], 'must be a port number');
    if (m?.protocol !== undefined) c.str(m.protocol, [...q, 'protocol'], { enum: ['TCP', 'ANY'] });
  });
  list.forEach((item, i) => {
    const p = ['policies', i];
    const m = c.map(item, p, POLICY_SHAPE.policy, ['name']);
    if (!m) return;
    if (m.name !== undefined) c.str(m.name, [...p, 'name']);
    if (m.selector !== undefined) {
      const sm = c.map(m.selector, [...p, 'selector'], POLICY_SHAPE.selector);
      if (sm?.listeners !== undefined) c.list(sm.listeners, [...p, 'selector', 'listeners'], { min: 1 })?.forEach((l, k) => {
        const s = c.str(l, [...p, 'selector', 'listeners', k]);
        if (s !== undefined) selectorRefs.push({ name: s, path: [...p, 'selector', 'listeners', k] });
      });
    }
    for (const kind of ['ingress', 'ingressDeny'] as const) {
      if (m[kind] === undefined) continue;
      c.list(m[kind], [...p, kind])?.forEach((r, j) => {
        const rp = [...p, kind, j];
        const rm = c.map(r, rp, POLICY_SHAPE.ingress);
        if (!rm) return;
        peers(rm, rp);
        if (rm.toPorts !== undefined) c.list(rm.toPorts, [...rp, 'toPorts'])?.forEach((pr, k) => {
          const q = [...rp, 'toPorts', k];
          const pm = c.map(pr, q, POLICY_SHAPE.portRule);
          if (!pm) return;
          if (pm.ports !== undefined) ports(pm.ports, [...q, 'ports']);
          if (pm.rules !== undefined) {
            const rr = c.map(pm.rules, [...q, 'rules'], POLICY_SHAPE.rules);
            if (rr?.http !== undefined) c.list(rr.http, [...q, 'rules', 'http'])?.forEach((h, n) => {
              const hp = [...q, 'rules', 'http', n];
              const hm = c.map(h, hp, POLICY_SHAPE.http);
              if (!hm) return;
              for (const f of ['method', 'path', 'host'] as const) if (hm[f] !== undefined) c.str(hm[f], [...hp, f]);
              if (hm.headers !== undefined) strList(hm.headers, [...hp, 'headers']);
              if (hm.headerMatches !== undefined) c.list(hm.headerMatches, [...hp, 'headerMatches'])?.forEach((x, z) => {
                const xm = c.map(x, [...hp, 'headerMatches', z], POLICY_SHAPE.headerMatch, ['name']);
                if (xm?.value !== undefined) c.str(xm.value, [...hp, 'headerMatches', z, 'value']);
              });
            });
          }
        });
      });
    }
  });
  // Semantics only once the shape is right, so one mistake is not reported twice.
  if (c.issues.length === before) {
    for (const issue of checkPolicies(list)) c.err(['policies', ...parsePath(issue.path)], issue.message);
  }
  return { policies: list as PolicySpec[], selectorRefs };
}

