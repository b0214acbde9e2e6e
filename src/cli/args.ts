// A small, strict argument parser for the strata command: --flag, --key value,
// --key=value, repeated keys collected, positionals kept in order. Unknown
// flags are errors, so typos never silently change a benchmark.
import { StrataError } from '../util/errors.js';

export class UsageError extends StrataError {
  constructor(message: string) { super('ERR_STRATA_USAGE', message); }
}

export interface ArgSpec {
  /** Flags that take no value. */
  booleans?: readonly string[];
  /** Options that take one value (the last one wins). */
  strings?: readonly string[];
  /** Options that may repeat; values collected in order. */
  lists?: readonly string[];
}

export interface ParsedArgs {
  positionals: string[];
  flags: Set<string>;
  values: Map<string, string>;
  listValues: Map<string, string[]>;
}

export function parseArgs(argv: readonly string[], spec: ArgSpec): ParsedArgs {
  const booleans = new Set(spec.booleans ?? []);
  const strings = new Set(spec.strings ?? []);
  const lists = new Set(spec.lists ?? []);
  const out: ParsedArgs = { positionals: [], flags: new Set(), values: new Map(), listValues: new Map() };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') { out.positionals.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith('--')) { out.positionals.push(a); continue; }
    const eq = a.indexOf('=');
    const key = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    if (booleans.has(key)) {
      if (eq >= 0) throw new UsageError(`--${key} takes no value`);
      out.flags.add(key);
      continue;
    }
    if (!strings.has(key) && !lists.has(key)) throw new UsageError(`unknown option --${key}`);
    let v: string;
    if (eq >= 0) v = a.slice(eq + 1);
    else {
      if (i + 1 >= argv.length) throw new UsageError(`--${key} needs a value`);
      v = argv[++i]!;
    }
    if (lists.has(key)) {
      const l = out.listValues.get(key) ?? [];
      l.push(v);
      out.listValues.set(key, l);
    } else out.values.set(key, v);
  }
  return out;
}
