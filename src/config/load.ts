// Loading the proxy's YAML config: parse with positions kept (yaml's
// parseDocument + LineCounter), validate every section, resolve references
// between sections, and either return the typed config with defaults
// applied or every issue found, each naming file, line and field:
//
//   proxy.yaml:14: routes[0].spec.rules[1].matches[0].path.type: must be one of Exact, PathPrefix, RegularExpression
//
// `strata proxy --config F --check` prints checkConfig(F).
//
// Every YAML failure is an issue with a line, never an exception: syntax
// errors, duplicate keys, more than one document ("---"), nesting too deep
// for the parser (the yaml library reports it as RESOURCE_EXHAUSTION), more
// than MAX_YAML_ALIASES alias expansions (its guard against "billion laughs"
// documents, which throws), and a file over MAX_CONFIG_BYTES (read no further).
import { closeSync, openSync, readSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument, visit, type Document } from 'yaml';
import { ConfigError } from '../util/errors.js';
import { Checker, isObj } from './checker.js';
import { checkAdmin, checkDrain, checkLogging, checkListeners, checkTls, checkClusters, checkRoutes, checkPoliciesSection } from './sections.js';
import { TlsContextManager } from '../l7/tls/context.js';
import type { ConfigIssue, ProxyConfig } from './types.js';

const TOP_LEVEL = ['admin', 'logging', 'drain', 'listeners', 'tls', 'clusters', 'routes', 'policies'] as const;

/** The yaml library's messages that speak of its API or its internals, said in the config's terms. */
const YAML_ERROR_TEXT: Partial<Record<string, string>> = {
  MULTIPLE_DOCS: 'a config file holds one YAML document; a second one starts here ("---")',
  RESOURCE_EXHAUSTION: 'nested too deeply for the YAML parser',
};

/** Largest config file read, in bytes (1 MiB: a thousand routes take about 300 KiB). */
export const MAX_CONFIG_BYTES = 1 << 20;
/**
 * Alias expansions allowed per document, counted as the yaml library does
 * (uses of an anchor, itself included, × the aliases inside it): 99 aliases
 * of a plain anchor pass. The library's own default.
 * Beyond it a small file can expand into an exponentially large tree.
 */
export const MAX_YAML_ALIASES = 100;

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
    // Out of stack, the parser's other errors are its consequences: report that one.
    const exhausted = doc.errors.find((e) => e.code === 'RESOURCE_EXHAUSTION');
    for (const e of exhausted ? [exhausted] : doc.errors) {
      const pos = e.linePos?.[0] ?? lc.linePos(e.pos[0]);
      const message = `YAML: ${YAML_ERROR_TEXT[e.code] ?? e.message.split('\n')[0]}`;
      c.issues.push({ file, line: pos.line, column: pos.col, field: '', message });
    }
    return { ok: false, config: null, errors: c.issues };
  }
  let root: unknown;
  try {
    root = doc.toJS({ maxAliasCount: MAX_YAML_ALIASES });
  } catch (err) {
    // The library throws (ReferenceError) past maxAliasCount, without a position: name the alias that crossed it.
    const at = aliasPastLimit(doc);
    const pos = lc.linePos(at?.range?.[0] ?? 0);
    const what = at ? ` (the anchor counts as one; at *${at.source})` : ' (the anchor counts as one)';
    c.issues.push({ file, line: pos.line, column: pos.col, field: '',
      message: err instanceof ReferenceError
        ? `YAML: more than ${MAX_YAML_ALIASES} alias expansions${what}; aliases are limited so a small file cannot expand into a huge one`
        : `YAML: ${(err as Error).message}` });
    return { ok: false, config: null, errors: c.issues };
  }
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

/** The alias that takes an anchor past MAX_YAML_ALIASES uses, in document order (else the first alias): where an over-limit document is reported. */
type AliasNode = { source: string; range?: [number, number, number] | null };
function aliasPastLimit(doc: Document): AliasNode | null {
  let n = 0;
  let first: AliasNode | null = null;
  let past: AliasNode | null = null;
  visit(doc, {
    Alias(_k, node) {
      first ??= node;
      // The anchored node counts as one use, as in the yaml library: its 100th alias is the 101st use.
      if (++n >= MAX_YAML_ALIASES) { past = node; return visit.BREAK; }
      return undefined;
    },
  });
  return past ?? first;
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
  const r = readBounded(path, MAX_CONFIG_BYTES);
  if (typeof r === 'string') return { ok: false, config: null, errors: [{ file: path, line: 0, column: 0, field: '', message: `cannot read: ${r}` }] };
  if (r.length > MAX_CONFIG_BYTES) {
    // The line the limit falls on: where the file stops being read.
    let line = 1;
    for (let i = 0; i < MAX_CONFIG_BYTES; i++) if (r[i] === 10) line++;
    return { ok: false, config: null, errors: [{ file: path, line, column: 0, field: '', message: `the file is larger than ${MAX_CONFIG_BYTES} bytes (the limit for a config file)` }] };
  }
  return parseConfig(r.toString('utf8'), path, opts);
}

/** At most max + 1 bytes of the file (one past the limit tells that it is over), or why it cannot be read. */
function readBounded(path: string, max: number): Buffer | string {
  let fd: number;
  try { fd = openSync(path, 'r'); } catch (err) { return (err as NodeJS.ErrnoException).code ?? (err as Error).message; }
  try {
    const buf = Buffer.allocUnsafe(max + 1);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
    }
    return buf.subarray(0, n);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
  } finally {
    closeSync(fd);
  }
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
  const r = parseFile(path, { checkFiles: true });
  if (!r.ok) {
    for (const l of r.errors.map(formatIssue)) err.write(`${l}\n`);
    err.write(`${path}: ${r.errors.length} error${r.errors.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  const cfg = r.config;
  out.write(`${path}: OK (${cfg.listeners.length} listeners, ${cfg.routes.length} routes, ${cfg.clusters.length} clusters, ${cfg.tls.length} tls, ${cfg.policies.length} policies)\n`);
  return 0;
}
