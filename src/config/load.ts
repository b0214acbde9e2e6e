// Loading the proxy's YAML config: parse with positions kept (yaml's
// parseDocument + LineCounter), validate every section, resolve references
// between sections, and either return the typed config with defaults
// applied or every issue found, each naming file, line and field:
//
//   proxy.yaml:14: routes[0].spec.rules[1].matches[0].path.type: must be one of Exact, PathPrefix, RegularExpression
//
// `strata proxy --config F --check` prints checkConfig(F).
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { ConfigError } from '../util/errors.js';
import { Checker, isObj } from './checker.js';
import { checkAdmin, checkDrain, checkLogging, checkListeners, checkTls, checkClusters, checkRoutes, checkPoliciesSection } from './sections.js';
import { TlsContextManager } from '../l7/tls/context.js';
import type { ConfigIssue, ProxyConfig } from './types.js';

const TOP_LEVEL = ['admin', 'logging', 'drain', 'listeners', 'tls', 'clusters', 'routes', 'policies'] as const;

export interface LoadOptions {
  /** Also load every TLS entry's certificate, key and CA (no network): catches missing or mismatched files. Default false for parseConfig/loadConfig, true for checkConfig. */
  checkFiles?: boolean;
}

export type ParseResult = { ok: true; config: ProxyConfig; errors: [] } | { ok: false; config: null; errors: ConfigIssue[] };

/** One issue as a line: "file:line: field: message". */
export function formatIssue(i: ConfigIssue): string {
  return `${i.file}:${i.line}: ${i.field ? `${i.field}: ` : ''}${i.message}`;
}

/** Validates YAML text; `file` is what messages call it, and relative TLS paths resolve against its directory. */
export function parseConfig(text: string, file: string, opts: LoadOptions = {}): ParseResult {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true, merge: true });
  const c = new Checker(doc, lc, file);
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const pos = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
      c.issues.push({ file, line: pos.line, column: pos.col, field: '', message: `YAML: ${e.message.split('\n')[0]}` });
    }
    return { ok: false, config: null, errors: c.issues };
  }
  const root = doc.toJS({ maxAliasCount: 100 }) as unknown;
  if (!isObj(root)) {
    c.err([], root === null || root === undefined ? 'the file is empty; expected a mapping with listeners, routes, clusters …' : 'the top level must be a mapping');
    return { ok: false, config: null, errors: c.issues };
  }
  c.map(root, [], TOP_LEVEL);
  const baseDir = dirname(resolve(file));

  const admin = checkAdmin(c, root.admin);
  const logging = checkLogging(c, root.logging);
  const drain = checkDrain(c, root.drain);
  const tls = checkTls(c, root.tls, baseDir);
  const { listeners, index: listenerIndex } = checkListeners(c, root.listeners);
  const { clusters, index: clusterIndex } = checkClusters(c, root.clusters);
  const { routes, refs } = checkRoutes(c, root.routes);
  const { policies, selectorRefs } = checkPoliciesSection(c, root.policies);

  // ---- references between sections
  const tlsNames = new Map<string, number>();
  tls.forEach((t, i) => {
    if (tlsNames.has(t.name)) c.err(['tls', i, 'name'], `duplicate tls name ${JSON.stringify(t.name)}`);
    tlsNames.set(t.name, i);
  });
  const tlsList = tls.length ? tls.map((t) => t.name).join(', ') : 'none defined';
  listeners.forEach((l, i) => {
    if (l.tls !== null && !tlsNames.has(l.tls)) c.err(['listeners', i, 'tls'], `no tls entry named ${JSON.stringify(l.tls)} (have: ${tlsList})`);
  });
  clusters.forEach((cl, i) => {
    if (cl.tls !== null && !tlsNames.has(cl.tls)) c.err(['clusters', i, 'tls'], `no tls entry named ${JSON.stringify(cl.tls)} (have: ${tlsList})`);
  });
  const listenerList = listeners.length ? listeners.map((l) => l.name).join(', ') : 'none defined';
  for (const r of refs.parents) {
    const li = listenerIndex.get(r.name);
    if (li === undefined) c.err(r.path, `no listener named ${JSON.stringify(r.name)} (have: ${listenerList})`);
    else if (r.port !== null && listeners[li]!.port !== r.port) c.err([...r.path.slice(0, -1), 'port'], `listener ${r.name} listens on ${listeners[li]!.port}, not ${r.port}`);
  }
  const clusterList = clusters.length ? clusters.map((x) => x.name).join(', ') : 'none defined';
  for (const b of refs.backends) {
    if (!clusterIndex.has(b.name)) c.err(b.path, `no cluster named ${JSON.stringify(b.name)} (have: ${clusterList})`);
  }
  for (const s of selectorRefs) {
    if (!listenerIndex.has(s.name)) c.err(s.path, `no listener named ${JSON.stringify(s.name)} (have: ${listenerList})`);
  }
  if (admin) {
    // An 'auto' listener may end up on the kernel too.
    const clash = listeners.findIndex((l) => (l.transport === 'kernel' || l.transport === 'auto') && l.port === admin.port &&
      (l.address === admin.address || l.address === '0.0.0.0' || l.address === '::'));
    if (clash >= 0) c.err(['admin', 'port'], `conflicts with listeners[${clash}] (${listeners[clash]!.name}) on ${admin.port}`);
  }
  if (opts.checkFiles) {
    tls.forEach((t, i) => {
      try {
        new TlsContextManager({ certFile: t.certFile, keyFile: t.keyFile, caFile: t.caFile, ...(t.trustDomains ? { trustDomains: t.trustDomains } : {}) }).close();
      } catch (err) {
        c.err(['tls', i, 'cert'], (err as Error).message);
      }
    });
  }
  if (c.issues.length > 0) {
    c.issues.sort((a, b) => a.line - b.line || a.column - b.column);
    return { ok: false, config: null, errors: c.issues };
  }
  return { ok: true, config: { file: resolve(file), admin, logging, listeners, drain, tls, clusters, routes, policies }, errors: [] };
}

/** Reads and validates a config file; throws ConfigError (first issue in fields, all in `issues`) if it is not valid. */
export function loadConfig(path: string, opts: LoadOptions = {}): ProxyConfig {
  const r = parseFile(path, opts);
  if (r.ok) return r.config;
  const first = r.errors[0]!;
  const err = new ConfigError(r.errors.map(formatIssue).join('\n'), first.file, first.line, first.field);
  (err as ConfigError & { issues: ConfigIssue[] }).issues = r.errors;
  throw err;
}

function parseFile(path: string, opts: LoadOptions): ParseResult {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { ok: false, config: null, errors: [{ file: path, line: 0, column: 0, field: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }] };
  }
  return parseConfig(text, path, opts);
}

export interface CheckResult {
  ok: boolean;
  errors: ConfigIssue[];
  /** errors formatted one per line, ready to print */
  lines: string[];
}

/** What `strata proxy --config F --check` prints: every issue, TLS files included. Starts nothing. */
export function checkConfig(path: string, opts: LoadOptions = { checkFiles: true }): CheckResult {
  const r = parseFile(path, opts);
  return { ok: r.ok, errors: r.errors, lines: r.errors.map(formatIssue) };
}

/**
 * `strata proxy --config F --check`: prints every issue (one per line) to
 * err, or a one-line summary to out; returns the exit status (0 valid, 1 not).
 */
export function runCheck(path: string, out: { write(s: string): unknown } = process.stdout, err: { write(s: string): unknown } = process.stderr): number {
  const r = checkConfig(path);
  if (!r.ok) {
    for (const l of r.lines) err.write(`${l}\n`);
    err.write(`${path}: ${r.errors.length} error${r.errors.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  const cfg = parseConfig(readFileSync(path, 'utf8'), path).config!;
  out.write(`${path}: OK (${cfg.listeners.length} listeners, ${cfg.routes.length} routes, ${cfg.clusters.length} clusters, ${cfg.tls.length} tls, ${cfg.policies.length} policies)\n`);
  return 0;
}
