// Differential fuzzing against a real peer parser: Node's own llhttp (through
// the deprecated process.binding('http_parser'), the parser node:http runs).
// Seeded mutations of valid and corpus inputs are parsed by both; they must
// agree on accept / reject / upgrade and on every completed message's method,
// URL, headers and body. Our parser additionally gets a random split of each
// input, which must not change the result. Skipped, with a message, when the
// runtime no longer exposes the binding. The same fuzzing carried through the
// proxy (policy, router and a real llhttp upstream must see one canonical
// authority and path) is test/proxy-differential.test.ts.

import { describe, expect, it } from 'vitest';
import { loadCorpus } from './helpers/llhttp-corpus.js';
import { Errno, Http1Parser, METHOD_NAMES, ParserType } from '../src/l7/http1/index.js';

interface NodeParser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | (Error & { code: string; bytesParsed: number });
  finish(): undefined | (Error & { code: string });
  [k: number]: unknown;
}
type NodeParserCtor = (new () => NodeParser) & Record<string, number>;

let Llhttp: NodeParserCtor | null = null;
try {
  const saved = process.emitWarning;
  process.emitWarning = () => {}; // the binding's deprecation warning is expected here
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  Llhttp = ((process as any).binding('http_parser') as { HTTPParser: NodeParserCtor }).HTTPParser;
  process.emitWarning = saved;
} catch {
  Llhttp = null;
}

interface Msg { method: string; url: string; status: number; headers: string[]; body: string }
interface Outcome { kind: 'ok' | 'error' | 'upgrade'; msgs: Msg[]; detail: string; reason?: string }

/**
 * Where strata is knowingly stricter than llhttp's defaults, by strata's
 * error reason. Such a rejection is accepted when everything strata completed
 * before it matches what llhttp parsed.
 */
const STRICTER: Record<string, string> = {
  'Invalid character in reason phrase': 'RFC 9112 §4: reason-phrase is HTAB / SP / VCHAR / obs-text; llhttp accepts other CTLs',
  'Expected LF after CR': 'RFC 9112 §2.2: a bare CR is invalid; llhttp accepts CR CR after the status line',
  'Bare LF after request-target': 'RFC 9112 §2.2: llhttp ends an HTTP/0.9 request line at a bare LF and reads headers after it',
  'Unexpected space before HTTP-version': 'RFC 9112 §3: one SP; llhttp skips extra spaces',
  'Invalid request-target form': 'RFC 9112 §3.2: asterisk-form is exactly "*"; llhttp accepts "*" followed by other characters',
  'Empty chunk extension name': 'RFC 9112 §7.1.1: chunk-ext-name is a token; llhttp accepts ";;" and ";="',
  'Invalid transfer-coding in `Transfer-Encoding`': 'RFC 9110 §10.1.4 / RFC 9112 §6.1: a request with a malformed coding has no trustworthy length; llhttp ignores non-final codings',
  'Unexpected space before request-target': 'RFC 9112 §3: one SP; llhttp skips extra spaces',
  'Empty request-target': 'RFC 9112 §3: request-target is never empty; llhttp accepts an empty CONNECT target',
  'Transfer-Encoding in trailer section': 'RFC 9110 §6.5.1: framing fields are not allowed as trailers; llhttp accepts them in responses',
  'Content-Length in trailer section': 'RFC 9110 §6.5.1: framing fields are not allowed as trailers',
  'Empty chunk extension value': 'RFC 9112 §7.1.1: chunk-ext-val is a token or quoted-string, never empty; llhttp accepts "name="',
  'Empty `Transfer-Encoding`': 'a request with an empty Transfer-Encoding has no trustworthy length; llhttp ignores the field',
  'CONNECT needs authority-form host:port': 'RFC 9110 §9.3.6 / RFC 9112 §3.2.3: uri-host ":" port; llhttp takes any target for CONNECT',
};

const trim = (s: string): string => s.replace(/^[ \t]+|[ \t]+$/g, '');

function runLlhttp(type: 'request' | 'response', input: Buffer): Outcome {
  const P = Llhttp!;
  const p = new P();
  p.initialize(type === 'request' ? P['REQUEST']! : P['RESPONSE']!, {}, 16 * 1024, 0);
  const msgs: Msg[] = [];
  let pending: string[] = [];
  let url = '';
  let cur: Msg | null = null;
  let upgraded = false;
  let upgradeDone = false;
  // kOnHeaders flushes long header lists, and trailers after the body: keep only the former.
  p[P['kOnHeaders']!] = (h: string[], u: string) => { if (cur === null) { pending.push(...h); url += u ?? ''; } };
  p[P['kOnHeadersComplete']!] = (_maj: number, _min: number, h: string[] | undefined, method: number, u: string | undefined, status: number, _msg: string, upgrade: boolean) => {
    const headers = [...pending, ...(h ?? [])].map((x, i) => (i % 2 ? trim(x) : x));
    cur = { method: type === 'request' ? METHOD_NAMES[method] ?? String(method) : '', url: (url + (u ?? '')), status: status ?? 0, headers, body: '' };
    pending = [];
    url = '';
    upgraded = upgrade;
    return 0;
  };
  p[P['kOnBody']!] = (b: Buffer) => { if (cur) cur.body += b.toString('latin1'); };
  p[P['kOnMessageComplete']!] = () => { if (cur) msgs.push(cur); cur = null; if (upgraded) upgradeDone = true; };
  const r = p.execute(input);
  if (typeof r !== 'number') {
    if (r.code === 'HPE_PAUSED_H2_UPGRADE') return { kind: 'upgrade', msgs, detail: `at ${r.bytesParsed}` };
    return { kind: 'error', msgs, detail: `${r.code} at ${r.bytesParsed}` };
  }
  // An upgrade takes effect once its message is complete (a body may come first).
  if (upgradeDone) return { kind: 'upgrade', msgs, detail: `at ${r}` };
  // Node's finish() reports nothing while an upgrade request's body is still
  // due; llhttp_finish would say INVALID_EOF_STATE, which is what we compare.
  if (upgraded) return { kind: 'error', msgs, detail: 'EOF inside the body of an upgrade request' };
  // Node resumes past a 101 that has no Upgrade header and then fails at EOF;
  // llhttp itself stopped there with HPE_PAUSED_UPGRADE, which is what we compare.
  if (type === 'response' && msgs.length > 0 && msgs[msgs.length - 1]!.status === 101) return { kind: 'upgrade', msgs, detail: 'after 101' };
  const f = p.finish();
  if (f) return { kind: 'error', msgs, detail: `finish ${f.code}` };
  return { kind: 'ok', msgs, detail: '' };
}

function runStrata(type: 'request' | 'response', input: Uint8Array, split: number): Outcome {
  const msgs: Msg[] = [];
  let cur: Msg = { method: '', url: '', status: 0, headers: [], body: '' };
  const d = (b: Uint8Array, s: number, e: number): string => Buffer.from(b.subarray(s, e)).toString('latin1');
  const p: Http1Parser = new Http1Parser(type === 'request' ? ParserType.REQUEST : ParserType.RESPONSE, {
    onMessageBegin: () => { cur = { method: '', url: '', status: 0, headers: [], body: '' }; },
    onMethod: () => { cur.method = p.methodName; },
    onUrl: (b, s, e) => { cur.url = d(b, s, e); },
    onHeader: (n, ns, ne, v, vs, ve) => { cur.headers.push(d(n, ns, ne), d(v, vs, ve)); },
    onHeadersComplete: () => { cur.status = type === 'response' ? p.statusCode : 0; },
    onBody: (b, s, e) => { cur.body += d(b, s, e); },
    onMessageComplete: () => { msgs.push(cur); },
  });
  for (const [s, e] of [[0, split], [split, input.length]] as const) {
    const piece = input.slice(s, e);
    p.feed(piece);
    piece.fill(0x7e);
    if (p.errno !== Errno.OK) break;
  }
  if (p.errno === Errno.PAUSED_UPGRADE || p.errno === Errno.PAUSED_H2_UPGRADE) return { kind: 'upgrade', msgs, detail: `at ${p.errorOffset}` };
  if (p.errno !== Errno.OK) return { kind: 'error', msgs, detail: `${p.errno} ${p.reason}`, reason: p.reason };
  const f = p.finish();
  if (f !== Errno.OK) return { kind: 'error', msgs, detail: `finish ${f}` };
  return { kind: 'ok', msgs, detail: '' };
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0x0d, 0x0a, 0x20, 0x09, 0x3a, 0x3b, 0x2c, 0x22, 0x5c, 0x00, 0x7f, 0xff, 0x30, 0x31, 0x66, 0x2d, 0x2f];
const SNIPPETS = ['\r\n', 'chunked', 'Transfer-Encoding: chunked\r\n', 'Content-Length: 5\r\n', ', ', '\r\n ', '0\r\n\r\n', ';a=b', 'Connection: close\r\n'];

function mutate(src: Uint8Array, rnd: () => number): Uint8Array {
  let b = Array.from(src);
  const n = 1 + Math.floor(rnd() * 3);
  for (let k = 0; k < n; k++) {
    const pos = Math.floor(rnd() * (b.length + 1));
    switch (Math.floor(rnd() * 4)) {
      case 0: if (b.length) b[Math.min(pos, b.length - 1)] = INTERESTING[Math.floor(rnd() * INTERESTING.length)]!; break;
      case 1: b.splice(pos, 1 + Math.floor(rnd() * 3)); break;
      case 2: b.splice(pos, 0, ...Array.from(SNIPPETS[Math.floor(rnd() * SNIPPETS.length)]!, (c) => c.charCodeAt(0))); break;
      default: { const s = Math.floor(rnd() * b.length); b = b.concat(b.slice(s, s + Math.floor(rnd() * 20))); }
    }
  }
  return Uint8Array.from(b);
}

describe('differential fuzzing against node:http\'s llhttp', () => {
  it.skipIf(Llhttp === null)('agrees on seeded mutations of corpus and typical messages', () => {
    const corpus = loadCorpus().filter((c) => c.lenient.length === 0 && !c.finish && c.meta['pause'] === undefined && c.meta['skipBody'] === undefined);
    const seeds: { type: 'request' | 'response'; input: Uint8Array }[] = corpus.map((c) => ({ type: c.mode, input: c.input }));
    const enc = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));
    seeds.push(
      { type: 'request', input: enc('POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n0\r\nT: v\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n') },
      { type: 'request', input: enc('PUT /c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcDELETE /d HTTP/1.0\r\n\r\n') },
      { type: 'response', input: enc('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n') },
    );
    const rnd = mulberry32(Number(process.env.HTTP1_FUZZ_SEED ?? 0x5eed));
    const ITER = Number(process.env.HTTP1_FUZZ_ITER ?? 3000);
    const disagreements: string[] = [];
    const stricter = new Map<string, number>();
    const kinds = { ok: 0, error: 0, upgrade: 0 };
    for (let i = 0; i < ITER; i++) {
      const seed = seeds[Math.floor(rnd() * seeds.length)]!;
      const input = mutate(seed.input, rnd);
      const split = Math.floor(rnd() * (input.length + 1));
      const ref = runLlhttp(seed.type, Buffer.from(input));
      const got = runStrata(seed.type, input, split);
      kinds[ref.kind]++;
      const same = ref.kind === got.kind && JSON.stringify(ref.msgs) === JSON.stringify(got.msgs);
      if (!same && got.kind === 'error' && got.reason !== undefined && got.reason in STRICTER &&
          JSON.stringify(ref.msgs.slice(0, got.msgs.length)) === JSON.stringify(got.msgs)) {
        stricter.set(got.reason, (stricter.get(got.reason) ?? 0) + 1);
        continue;
      }
      // Node bundles llhttp 9.3.1, which rejects HTAB after Content-Length
      // digits; 9.4.2 (the corpus's release) and RFC 9110 §5.5 accept it as OWS.
      if (!same && ref.detail.startsWith('HPE_INVALID_CONTENT_LENGTH') && /content-length:[ \t]*\d+ *\t/i.test(Buffer.from(input).toString('latin1')) &&
          JSON.stringify(got.msgs.slice(0, ref.msgs.length)) === JSON.stringify(ref.msgs)) {
        stricter.set('(llhttp 9.3.1) HTAB after Content-Length', (stricter.get('(llhttp 9.3.1) HTAB after Content-Length') ?? 0) + 1);
        continue;
      }
      // llhttp 9.3.1 does not see "close" in "Connection: close<HTAB>"; 9.4.2 (the corpus) does, and so do we.
      if (!same && got.reason === 'Data after `Connection: close`' && /connection:[^\r]*close *\t/i.test(Buffer.from(input).toString('latin1')) &&
          JSON.stringify(ref.msgs.slice(0, got.msgs.length)) === JSON.stringify(got.msgs)) {
        stricter.set('(llhttp 9.3.1) Connection: close<HTAB>', (stricter.get('(llhttp 9.3.1) Connection: close<HTAB>') ?? 0) + 1);
        continue;
      }
      if (!same && disagreements.length < 20) {
        disagreements.push(`${seed.type} ${JSON.stringify(Buffer.from(input).toString('latin1'))}\n    llhttp ${ref.kind} ${ref.detail} ${JSON.stringify(ref.msgs)}\n    strata ${got.kind} ${got.detail} ${JSON.stringify(got.msgs)}`);
      }
    }
    console.log([
      `differential vs llhttp ${process.versions.llhttp}: ${ITER} inputs (llhttp: ${kinds.ok} ok, ${kinds.error} rejected, ${kinds.upgrade} upgrade), ` +
        `${disagreements.length} disagreements, ${[...stricter.values()].reduce((a, b) => a + b, 0)} known and explained differences:`,
      ...[...stricter].map(([r, n]) => `  ${n} x ${r} — ${STRICTER[r] ?? 'llhttp 9.3.1 is stricter than 9.4.2 and RFC 9110 here'}`),
    ].join('\n'));
    expect(disagreements).toEqual([]);
  });
});
