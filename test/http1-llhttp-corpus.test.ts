// Outside check: llhttp's own conformance corpus, run through strata's parser.
//
// For every case that enables no lenient flag we must agree with llhttp on
// accept / reject / upgrade, and on the parsed method, URL, version, status,
// headers, body and message count. Each input is replayed whole, split at
// every byte boundary (or at a spread of boundaries for long inputs), and fed
// one byte at a time. Cases we knowingly decide differently are listed in
// EXCLUDED with the reason; a stale exclusion (the case now agrees) fails too.

import { describe, expect, it } from 'vitest';
import { loadCorpus, type CorpusCase } from './helpers/llhttp-corpus.js';
import { Cb, Errno, Lenient, ParserType } from '../src/l7/http1/constants.js';
import { Http1Parser, type Http1Handler } from '../src/l7/http1/parser.js';

/**
 * Cases where strata is deliberately stricter than llhttp's defaults.
 * Key: `${file} :: ${heading}`.
 */
const EXCLUDED: Record<string, string> = {
  // Empty: every non-lenient case agrees. llhttp 9.x already rejects obs-fold
  // unless lenient, which is where strata and llhttp could have parted.
};

const LENIENT_BY_NAME: Record<string, number> = {
  headers: Lenient.HEADERS,
  'chunked-length': Lenient.CHUNKED_LENGTH,
  'keep-alive': Lenient.KEEP_ALIVE,
  'transfer-encoding': Lenient.TRANSFER_ENCODING,
  version: Lenient.VERSION,
  'data-after-close': Lenient.DATA_AFTER_CLOSE,
  'spaces-after-chunk-size': Lenient.SPACES_AFTER_CHUNK_SIZE,
};

interface Msg {
  method: string;
  url: string;
  version: string;
  status: number;
  headers: [string, string][];
  body: string;
  headersComplete: boolean;
  complete: boolean;
}

interface Outcome {
  kind: 'ok' | 'error' | 'upgrade';
  code: number;
  /** Absolute offset where an upgrade hands over the stream. */
  at: number;
  messages: Msg[];
  /** Pauses our parser took (runs only); llhttp's log count for expectations. */
  pauses: number;
}

const utf8 = (b: Uint8Array, s: number, e: number): string => Buffer.from(b.buffer, b.byteOffset + s, e - s).toString('utf8');
const trimOws = (s: string): string => s.replace(/[ \t]+$/, '').replace(/^[ \t]+/, '');
const newMsg = (): Msg => ({ method: '', url: '', version: '', status: 0, headers: [], body: '', headersComplete: false, complete: false });

/** What llhttp did, from the case's log. */
function expected(c: CorpusCase): Outcome {
  const out: Outcome = { kind: 'ok', code: 0, at: -1, messages: [], pauses: 0 };
  let m: Msg | null = null;
  let lastSpan = '';
  for (const e of c.log) {
    switch (e.kind) {
      case 'message begin': m = newMsg(); out.messages.push(m); lastSpan = ''; break;
      case 'span': {
        if (!m) break;
        const v = e.value!;
        if (e.span === 'method') m.method += v;
        else if (e.span === 'url') m.url += v;
        else if (e.span === 'body') m.body += v;
        else if (e.span === 'header_field') {
          if (lastSpan !== 'header_field') m.headers.push([v, '']);
          else m.headers[m.headers.length - 1]![0] += v;
        } else if (e.span === 'header_value') {
          m.headers[m.headers.length - 1]![1] += v;
        }
        lastSpan = e.span!;
        break;
      }
      case 'headers complete':
        if (!m) break;
        m.headersComplete = true;
        m.version = (e.attrs['v'] ?? '').replace('/', '.');
        if (e.attrs['status']) m.status = Number(e.attrs['status']);
        // trailers arrive as header spans after this point in llhttp's log; drop them
        lastSpan = 'headers complete';
        break;
      case 'message complete': if (m) m.complete = true; break;
      case 'pause': out.pauses++; break;
      case 'error': {
        const code = Number(e.attrs['code']);
        if (code === Errno.PAUSED_UPGRADE || code === Errno.PAUSED_H2_UPGRADE) { out.kind = 'upgrade'; out.at = e.off; }
        else if (code !== Errno.PAUSED) { out.kind = 'error'; out.code = code; }
        break;
      }
      case 'finish':
        // finish=1 is llhttp's SAFE_WITH_CB: the EOF completes the message (its
        // on_message_complete runs inside llhttp_finish and is not logged).
        if (e.attrs['finish'] === '1' && m) m.complete = true;
        if (e.attrs['finish'] === '2') { out.kind = 'error'; out.code = Errno.INVALID_EOF_STATE; }
        break;
      default: break;
    }
  }
  for (const msg of out.messages) msg.headers = msg.headers.map(([k, v]) => [k, trimOws(v)]);
  return out;
}

/** Trailers are logged by llhttp as header spans after "headers complete"; separate them. */
function stripTrailers(c: CorpusCase, o: Outcome): void {
  let idx = -1;
  let afterHead = false;
  let trailerCount = 0;
  const counts: number[] = [];
  let lastSpan = '';
  for (const e of c.log) {
    if (e.kind === 'message begin') { idx++; afterHead = false; trailerCount = 0; counts[idx] = 0; lastSpan = ''; }
    if (e.kind === 'headers complete') afterHead = true;
    if (e.kind === 'span' && afterHead && e.span === 'header_field' && lastSpan !== 'header_field') counts[idx] = ++trailerCount;
    if (e.kind === 'span') lastSpan = e.span!;
  }
  o.messages.forEach((m, i) => { const n = counts[i] ?? 0; if (n) m.headers.splice(m.headers.length - n, n); });
}

const PAUSE_AT: Record<string, keyof Http1Handler> = {
  on_message_begin: 'onMessageBegin', on_method_complete: 'onMethod', on_url_complete: 'onUrl',
  on_protocol_complete: 'onVersion', on_version_complete: 'onVersion', on_status_complete: 'onStatus',
  on_header_field_complete: 'onHeader', on_header_value_complete: 'onHeader',
  on_headers_complete: 'onHeadersComplete', on_chunk_header: 'onChunkHeader',
  on_chunk_extension_name: 'onChunkExtension', on_chunk_extension_value: 'onChunkExtension',
  on_chunk_complete: 'onChunkComplete', on_message_complete: 'onMessageComplete',
};

/** One handler class, instantiated per run; the parser holds it for its lifetime. */
class Recorder implements Http1Handler {
  messages: Msg[] = [];
  cur: Msg = newMsg();
  parser!: Http1Parser;
  pauses = 0;
  constructor(readonly pauseAt: string | undefined, readonly skipBody: boolean) {}
  private maybePause(name: string): number {
    if (this.pauseAt === name) { this.pauses++; return Cb.PAUSE; }
    return Cb.OK;
  }
  onMessageBegin(): number { this.cur = newMsg(); this.messages.push(this.cur); return this.maybePause('onMessageBegin'); }
  onMethod(): number { this.cur.method = this.parser.methodName; return this.maybePause('onMethod'); }
  onUrl(b: Uint8Array, s: number, e: number): number { this.cur.url = utf8(b, s, e); return this.maybePause('onUrl'); }
  onVersion(): number { return this.maybePause('onVersion'); }
  onStatus(): number { return this.maybePause('onStatus'); }
  onHeader(n: Uint8Array, ns: number, ne: number, v: Uint8Array, vs: number, ve: number): number {
    this.cur.headers.push([utf8(n, ns, ne), utf8(v, vs, ve)]);
    return this.maybePause('onHeader');
  }
  onHeadersComplete(): number {
    const p = this.parser;
    this.cur.headersComplete = true;
    this.cur.version = `${p.versionMajor}.${p.versionMinor}`;
    this.cur.status = p.type === ParserType.RESPONSE ? p.statusCode : 0;
    if (this.skipBody) return Cb.SKIP_BODY;
    return this.maybePause('onHeadersComplete');
  }
  onBody(b: Uint8Array, s: number, e: number): number { this.cur.body += utf8(b, s, e); return Cb.OK; }
  onChunkHeader(): number { return this.maybePause('onChunkHeader'); }
  onChunkExtension(): number { return this.maybePause('onChunkExtension'); }
  onChunkComplete(): number { return this.maybePause('onChunkComplete'); }
  onMessageComplete(): number { this.cur.complete = true; return this.maybePause('onMessageComplete'); }
}

function runOnce(c: CorpusCase, lenient: number, chunks: number[]): Outcome {
  const pauseAt = typeof c.meta['pause'] === 'string' ? PAUSE_AT[c.meta['pause'] as string] : undefined;
  const rec = new Recorder(pauseAt, c.meta['skipBody'] === true);
  const parser = new Http1Parser(c.mode === 'request' ? ParserType.REQUEST : ParserType.RESPONSE, rec, { lenient });
  rec.parser = parser;
  const out: Outcome = { kind: 'ok', code: 0, at: -1, messages: rec.messages, pauses: 0 };
  // Body bytes decoded per span would split UTF-8 sequences; collect raw bytes per message instead.
  const bodies: number[][] = [];
  const origBody = rec.onBody.bind(rec);
  rec.onBody = (b, s, e) => {
    const i = rec.messages.length - 1;
    (bodies[i] ??= []).push(...b.subarray(s, e));
    return origBody(b, s, e);
  };
  let base = 0;
  let stop = false;
  for (const len of chunks) {
    // A fresh copy per feed: spans must not outlive their buffer.
    const chunk = c.input.slice(base, base + len);
    let off = 0;
    for (;;) {
      const n = parser.feed(chunk, off, chunk.length - off);
      off += n;
      // After a pause feed again even at the end of the chunk: an event may be pending.
      if (parser.errno === Errno.PAUSED) { parser.resume(); continue; }
      if (parser.errno === Errno.PAUSED_UPGRADE || parser.errno === Errno.PAUSED_H2_UPGRADE) {
        out.kind = 'upgrade'; out.at = base + off; stop = true; break;
      }
      if (parser.errno !== Errno.OK) { out.kind = 'error'; out.code = parser.errno; stop = true; break; }
      if (off >= chunk.length) break;
    }
    chunk.fill(0x7e); // poison: a span kept past its callback would show up as '~'
    if (stop) break;
    base += len;
  }
  if (!stop && c.finish) {
    const r = parser.finish();
    if (r !== Errno.OK) { out.kind = 'error'; out.code = r; }
  }
  rec.messages.forEach((m, i) => { m.body = Buffer.from(bodies[i] ?? []).toString('utf8'); });
  out.pauses = rec.pauses;
  return out;
}

function splits(n: number): number[][] {
  const plans: number[][] = [[n]];
  const step = n <= 400 ? 1 : Math.ceil(n / 60);
  for (let k = 1; k < n; k += step) plans.push([k, n - k]);
  plans.push(Array.from({ length: n }, () => 1)); // byte at a time
  return plans;
}

function compare(exp: Outcome, got: Outcome): string | null {
  if (exp.kind !== got.kind) return `outcome ${got.kind}${got.code ? `(${got.code})` : ''}, llhttp ${exp.kind}${exp.code ? `(${exp.code})` : ''}`;
  if (exp.kind === 'upgrade' && exp.at !== got.at) return `upgrade at ${got.at}, llhttp at ${exp.at}`;
  // A pause case must pause: our callback mapping has to reach the same events.
  if (exp.pauses > 0 && got.pauses === 0) return `llhttp paused ${exp.pauses}x, strata never`;
  // On error compare only the messages llhttp completed before the error.
  const em = exp.kind === 'error' ? exp.messages.filter((m) => m.complete) : exp.messages;
  const gm = exp.kind === 'error' ? got.messages.filter((m) => m.complete) : got.messages;
  if (em.length !== gm.length) return `${gm.length} messages, llhttp ${em.length}`;
  for (let i = 0; i < em.length; i++) {
    const e = em[i]!, g = gm[i]!;
    if (e.headersComplete !== g.headersComplete) return `message ${i}: headersComplete ${g.headersComplete}`;
    if (e.complete !== g.complete) return `message ${i}: complete ${g.complete}`;
    if (!e.headersComplete) continue;
    if (e.method !== g.method) return `message ${i}: method ${g.method} vs ${e.method}`;
    if (e.url !== g.url) return `message ${i}: url ${JSON.stringify(g.url)} vs ${JSON.stringify(e.url)}`;
    if (e.version !== g.version) return `message ${i}: version ${g.version} vs ${e.version}`;
    if (e.status !== g.status) return `message ${i}: status ${g.status} vs ${e.status}`;
    if (JSON.stringify(e.headers) !== JSON.stringify(g.headers)) return `message ${i}: headers ${JSON.stringify(g.headers)} vs ${JSON.stringify(e.headers)}`;
    if (e.body !== g.body) return `message ${i}: body ${JSON.stringify(g.body)} vs ${JSON.stringify(e.body)}`;
  }
  return null;
}

interface Result { key: string; lenient: boolean; skipped?: string; diff: string | null; codeAgrees: boolean }

function runCase(c: CorpusCase, key: string): Result {
  let lenient = 0;
  for (const l of c.lenient) {
    const bit = LENIENT_BY_NAME[l];
    if (bit === undefined) return { key, lenient: true, skipped: `lenient-${l} not implemented`, diff: null, codeAgrees: true };
    lenient |= bit;
  }
  const exp = expected(c);
  stripTrailers(c, exp);
  let firstDiff: string | null = null;
  let codeAgrees = true;
  for (const plan of splits(c.input.length)) {
    const got = runOnce(c, lenient, plan);
    const d = compare(exp, got);
    if (d && !firstDiff) firstDiff = `split ${plan.length > 2 ? 'bytewise' : plan.join('+')}: ${d}`;
    if (exp.kind === 'error' && got.kind === 'error' && exp.code !== got.code) codeAgrees = false;
  }
  return { key, lenient: c.lenient.length > 0, diff: firstDiff, codeAgrees };
}

describe('llhttp corpus', () => {
  const cases = loadCorpus();
  // Headings repeat (a strict case and its lenient twin): number the repeats.
  const seen = new Map<string, number>();
  const results = cases.map((c) => {
    let key = `${c.file} :: ${c.name}`;
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    if (n > 1) key += ` #${n}`;
    return runCase(c, key);
  });

  it('agrees with llhttp on every non-lenient case (split at every byte boundary)', () => {
    const strict = results.filter((r) => !r.lenient);
    const counted = strict.filter((r) => !(r.key in EXCLUDED));
    const agree = counted.filter((r) => r.diff === null);
    const lenient = results.filter((r) => r.lenient);
    const lenientRun = lenient.filter((r) => !r.skipped);
    const codeMismatch = strict.filter((r) => !r.codeAgrees).map((r) => r.key);
    const lines = [
      `llhttp corpus: ${agree.length}/${counted.length} cases agree; ` +
        `${strict.length - counted.length} excluded (strata stricter, listed below); ` +
        `lenient: ${lenientRun.filter((r) => r.diff === null).length}/${lenientRun.length} agree with strata's matching leniency, ` +
        `${lenient.length - lenientRun.length} skipped (leniency not implemented)`,
      `error-code agreement on rejected cases: ${strict.length - codeMismatch.length}/${strict.length}` +
        (codeMismatch.length ? ` (differing codes: ${codeMismatch.join('; ')})` : ''),
      ...Object.entries(EXCLUDED).map(([k, why]) => `  excluded: ${k} — ${why}`),
      ...lenient.filter((r) => r.skipped).map((r) => `  skipped: ${r.key} — ${r.skipped}`),
      ...counted.filter((r) => r.diff !== null).map((r) => `  DISAGREE: ${r.key}: ${r.diff}`),
      ...lenientRun.filter((r) => r.diff !== null).map((r) => `  lenient differs: ${r.key}: ${r.diff}`),
    ];
    console.log(lines.join('\n'));
    expect(counted.length).toBeGreaterThan(150);
    expect(counted.filter((r) => r.diff !== null).map((r) => `${r.key}: ${r.diff}`)).toEqual([]);
  });

  it('keeps no stale exclusions', () => {
    const byKey = new Map(results.map((r) => [r.key, r]));
    for (const key of Object.keys(EXCLUDED)) {
      const r = byKey.get(key);
      expect(r, `excluded case ${key} not found in corpus`).toBeDefined();
      expect(r!.diff, `excluded case ${key} now agrees; remove the exclusion`).not.toBeNull();
    }
  });
});
