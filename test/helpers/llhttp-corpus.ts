// Loader for llhttp's Markdown conformance corpus (test/conformance/llhttp, MIT).
//
// Each case is a heading, a `<!-- meta={...} -->` line, an ```http block with
// the raw input and a ```log block with llhttp's event log. The input is turned
// into bytes the way llhttp's own runner does (see the corpus README): drop one
// trailing newline, join backslash-continued lines, LF -> CRLF, expand the
// escapes, evaluate `${expr}`, then UTF-8 encode the result (llhttp's runner
// encodes the whole string as UTF-8, so `\xff` becomes the two bytes C3 BF;
// the logged span lengths confirm it).

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

/** The corpus ships with the repository (a user's clone has no shared/ beside it). */
export const CORPUS_DIR = path.resolve(here, '../conformance/llhttp');

export interface LogEvent {
  off: number; // -1 for off=NULL
  kind: string; // 'message begin', 'span', 'headers complete', 'error', ...
  span?: string; // span kind (method, url, header_field ...)
  len?: number;
  value?: string; // decoded span text
  attrs: Record<string, string>;
}

export interface CorpusCase {
  file: string; // e.g. request/sample.md
  name: string; // heading text
  line: number;
  meta: Record<string, unknown>;
  mode: 'request' | 'response';
  /** Lenient flags named in the meta type (request-lenient-headers -> ['headers']). */
  lenient: string[];
  finish: boolean;
  input: Uint8Array;
  log: LogEvent[];
}

function unescapeLogString(s: string): string {
  // llhttp's log escapes only control characters; quotes and backslashes are raw.
  return s.replace(/\\(x[0-9a-fA-F]{2}|[rntf])/g, (_m, e: string) => {
    switch (e[0]) {
      case 'r': return '\r';
      case 'n': return '\n';
      case 't': return '\t';
      case 'f': return '\f';
      default: return String.fromCharCode(parseInt(e.slice(1), 16));
    }
  });
}

function parseLog(text: string): LogEvent[] {
  const out: LogEvent[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (line === '') continue;
    const m = /^off=(\d+|NULL) (.*)$/.exec(line);
    if (!m) throw new Error(`unparsable log line: ${line}`);
    const off = m[1] === 'NULL' ? -1 : Number(m[1]);
    const rest = m[2]!;
    const sm = /^len=(\d+) span\[([a-z_]+)\]=(?:"(.*)"|(cr|lf))$/.exec(rest);
    if (sm) {
      const value = sm[3] !== undefined ? unescapeLogString(sm[3]) : sm[4] === 'cr' ? '\r' : '\n';
      out.push({ off, kind: 'span', len: Number(sm[1]), span: sm[2]!, value, attrs: {} });
      continue;
    }
    const em = /^error code=(\d+) reason="(.*)"$/.exec(rest);
    if (em) {
      out.push({ off, kind: 'error', attrs: { code: em[1]!, reason: em[2]! } });
      continue;
    }
    const attrs: Record<string, string> = {};
    let kind = rest;
    const am = /^([a-z_ ]+?)((?: [a-z_]+=\S+)*)$/.exec(rest);
    if (am) {
      kind = am[1]!;
      for (const kv of am[2]!.trim().split(' ').filter(Boolean)) {
        const i = kv.indexOf('=');
        attrs[kv.slice(0, i)] = kv.slice(i + 1);
      }
    }
    const fm = /^finish=(\d+)$/.exec(rest);
    if (fm) { kind = 'finish'; attrs['finish'] = fm[1]!; }
    out.push({ off, kind, attrs });
  }
  return out;
}

/** Steps 1–5 of the corpus README, then UTF-8 encoding as llhttp's runner does. */
export function buildInput(block: string): Uint8Array {
  let s = block.endsWith('\n') ? block.slice(0, -1) : block;
  s = s.replace(/\\\n/g, '');
  s = s.replace(/\n/g, '\r\n');
  s = s.replace(/\\(r|n|t|f|x[0-9a-fA-F]{2}|[0-7]{1,3})/g, (_m, e: string) => {
    switch (e[0]) {
      case 'r': return '\r';
      case 'n': return '\n';
      case 't': return '\t';
      case 'f': return '\f';
      case 'x': return String.fromCharCode(parseInt(e.slice(1), 16));
      default: return String.fromCharCode(parseInt(e, 8));
    }
  });
  // eslint-disable-next-line @typescript-eslint/no-implied-eval
  s = s.replace(/\$\{([^}]+)\}/g, (_m, expr: string) => String(new Function(`return (${expr});`)()));
  return new Uint8Array(Buffer.from(s, 'utf8'));
}

export function parseCorpusFile(file: string, text: string): CorpusCase[] {
  const lines = text.split('\n');
  const cases: CorpusCase[] = [];
  let heading = '';
  let meta: Record<string, unknown> | null = null;
  let metaLine = 0;
  let httpBlock: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const h = /^#{1,6}\s+(.*)$/.exec(line);
    if (h) { heading = h[1]!.trim(); continue; }
    const mm = /^<!--\s*meta=(\{.*\})\s*-->/.exec(line);
    if (mm) { meta = JSON.parse(mm[1]!) as Record<string, unknown>; metaLine = i + 1; httpBlock = null; continue; }
    const fence = /^```(\w+)\s*$/.exec(line);
    if (fence && meta) {
      const lang = fence[1]!;
      let j = i + 1;
      const body: string[] = [];
      while (j < lines.length && !/^```\s*$/.test(lines[j]!)) body.push(lines[j++]!);
      i = j;
      const content = body.join('\n') + '\n';
      if (lang === 'http') httpBlock = content;
      else if (lang === 'log' && httpBlock !== null) {
        const type = String(meta['type']);
        const mode = type.startsWith('response') ? 'response' : 'request';
        const rest = type.slice(mode.length).replace(/^-/, '');
        const lenient: string[] = [];
        let finish = false;
        if (rest === 'finish') finish = true;
        else if (rest.startsWith('lenient-')) lenient.push(rest.slice('lenient-'.length));
        else if (rest !== '') throw new Error(`${file}:${metaLine}: unknown case type ${type}`);
        cases.push({ file, name: heading, line: metaLine, meta, mode, lenient, finish, input: buildInput(httpBlock), log: parseLog(content) });
        meta = null;
        httpBlock = null;
      }
    }
  }
  return cases;
}

export function loadCorpus(dir = CORPUS_DIR): CorpusCase[] {
  if (!existsSync(dir)) {
    throw new Error(`llhttp corpus not found at ${dir}: it ships in test/conformance/llhttp`);
  }
  const out: CorpusCase[] = [];
  for (const sub of ['request', 'response']) {
    const d = path.join(dir, sub);
    for (const f of readdirSync(d).filter((n) => n.endsWith('.md')).sort()) {
      out.push(...parseCorpusFile(`${sub}/${f}`, readFileSync(path.join(d, f), 'utf8')));
    }
  }
  return out;
}
