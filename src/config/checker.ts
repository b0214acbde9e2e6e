// The small validation toolkit the config loader is written with: each
// check reads a plain JS value at a field path, and on failure records an
// issue located in the YAML source (file, line, column) by looking the path
// up in the parsed Document. Checks never throw; they return undefined and
// the caller keeps going, so one run reports every problem.
import type { Document, LineCounter } from 'yaml';
import { isMap, isPair, isScalar } from 'yaml';
import type { ConfigIssue } from './types.js';

export type Path = readonly (string | number)[];

export function formatPath(p: Path): string {
  let s = '';
  for (const seg of p) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return s;
}

/** "a[0].b.c[2]" back into segments (for issues reported by other modules, e.g. policy). */
export function parsePath(s: string): (string | number)[] {
  const out: (string | number)[] = [];
  const re = /([^.[\]]+)|\[(\d+)\]/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s)) !== null) out.push(m[2] !== undefined ? Number(m[2]) : m[1]!);
  return out;
}

export const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const DURATION = /^(?:[0-9]{1,5}(?:h|ms|m|s)){1,4}$/;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };

/** Gateway API duration ("1h", "30s", "1m30s", "500ms", GEP-2257) to milliseconds, or null. */
export function parseDuration(s: string): number | null {
  if (!DURATION.test(s)) return null;
  let ms = 0;
  for (const m of s.matchAll(/([0-9]+)(ms|h|m|s)/g)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms;
}

export interface StrOpts { enum?: readonly string[]; re?: RegExp; reMsg?: string; min?: number; max?: number }

export class Checker {
  readonly issues: ConfigIssue[] = [];
  constructor(private readonly doc: Document, private readonly lc: LineCounter, readonly file: string) {}

  /** Records an issue at p (at the key of the last segment when `at` is 'key'). */
  err(p: Path, message: string, at: 'value' | 'key' = 'value'): void {
    const { line, col } = this.locate(p, at);
    this.issues.push({ file: this.file, line, column: col, field: formatPath(p), message });
  }

  private locate(p: Path, at: 'value' | 'key'): { line: number; col: number } {
    for (let n = p.length; n >= 0; n--) {
      const sub = p.slice(0, n);
      if (at === 'key' && n === p.length && n > 0) {
        const parent = sub.length > 1 ? this.doc.getIn(sub.slice(0, -1), true) : this.doc.contents;
        if (isMap(parent)) {
          const last = sub[sub.length - 1];
          const pair = parent.items.find((it) => isPair(it) && isScalar(it.key) && it.key.value === last);
          const r = pair && isScalar(pair.key) ? pair.key.range : undefined;
          if (r) return this.lc.linePos(r[0]);
        }
      }
      const node = (sub.length === 0 ? this.doc.contents : this.doc.getIn(sub, true)) as { range?: [number, number, number] } | null | undefined;
      if (node && node.range) return this.lc.linePos(node.range[0]);
    }
    return { line: 1, col: 1 };
  }

  /** An object with only `allowed` keys and all `required` ones. */
  map(v: unknown, p: Path, allowed: readonly string[], required: readonly string[] = []): Record<string, unknown> | undefined {
    if (!isObj(v)) { this.err(p, v === null || v === undefined ? 'must be a mapping (it is empty)' : 'must be a mapping'); return undefined; }
    for (const k of Object.keys(v)) {
      if (!allowed.includes(k)) this.err([...p, k], `unknown field (expected one of ${allowed.join(', ')})`, 'key');
    }
    for (const k of required) if (v[k] === undefined || v[k] === null) this.err([...p, k], 'required field is missing');
    return v;
  }

  list(v: unknown, p: Path, o: { min?: number; max?: number } = {}): unknown[] | undefined {
    if (!Array.isArray(v)) { this.err(p, 'must be a list'); return undefined; }
    if (o.min !== undefined && v.length < o.min) this.err(p, `must have at least ${o.min} item${o.min === 1 ? '' : 's'}`);
    if (o.max !== undefined && v.length > o.max) this.err(p, `must have at most ${o.max} items`);
    return v;
  }

  str(v: unknown, p: Path, o: StrOpts = {}): string | undefined {
    if (typeof v !== 'string') { this.err(p, o.enum ? `must be one of ${o.enum.join(', ')}` : 'must be a string'); return undefined; }
    if (o.enum && !o.enum.includes(v)) { this.err(p, `must be one of ${o.enum.join(', ')}`); return undefined; }
    if (o.min !== undefined && v.length < o.min) { this.err(p, o.min === 1 ? 'must not be empty' : `must be at least ${o.min} characters`); return undefined; }
    if (o.max !== undefined && v.length > o.max) { this.err(p, `must be at most ${o.max} characters`); return undefined; }
    if (o.re && !o.re.test(v)) { this.err(p, o.reMsg ?? `must match ${o.re}`); return undefined; }
    return v;
  }

  int(v: unknown, p: Path, min: number, max: number): number | undefined {
    if (typeof v !== 'number' || !Number.isInteger(v)) { this.err(p, `must be an integer ${min}..${max}`); return undefined; }
    if (v < min || v > max) { this.err(p, `must be in ${min}..${max}`); return undefined; }
    return v;
  }

  bool(v: unknown, p: Path): boolean | undefined {
    if (typeof v !== 'boolean') { this.err(p, 'must be true or false'); return undefined; }
    return v;
  }

  /** Gateway API duration string; milliseconds. */
  dur(v: unknown, p: Path, o: { min?: number; max?: number } = {}): number | undefined {
    const ms = typeof v === 'string' ? parseDuration(v) : null;
    if (ms === null) { this.err(p, `must be a duration like "10s", "1m30s" or "250ms"${typeof v === 'number' ? ' (a bare number has no unit)' : ''}`); return undefined; }
    if (o.min !== undefined && ms < o.min) { this.err(p, `must be at least ${o.min} ms`); return undefined; }
    if (o.max !== undefined && ms > o.max) { this.err(p, `must be at most ${o.max} ms`); return undefined; }
    return ms;
  }

  /** m[key] checked by fn when present, else the default. */
  opt<T>(m: Record<string, unknown>, p: Path, key: string, fn: (v: unknown, p: Path) => T | undefined, dflt: T): T {
    const v = m[key];
    if (v === undefined) return dflt;
    const r = fn(v, [...p, key]);
    return r === undefined ? dflt : r;
  }
}
