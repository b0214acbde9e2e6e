// User-supplied regular expressions: route path, header and query matches,
// L7 policy method/path/host, `/flows` filters. Every one of them compiles
// here, and only here, with RE2 (the `re2` package: Google's engine, the one
// behind Envoy's safe_regex and so behind Cilium's L7 rules). RE2 matches in
// time linear in the input whatever the pattern; V8's backtracking engine
// took seconds on `/api/(\w+/?)*` against "/api/aaaa…a!", stalling every
// connection of the process. RE2's syntax is the documented one: RE2 itself
// refuses what it cannot match in linear time (backreferences, lookaround),
// with its own message; there is no hand-written list of dangerous patterns.
//
// Full matches (Gateway API RegularExpression, Envoy's safe_regex) anchor the
// pattern as ^(?:…)$ only after the pattern compiled on its own, so a source
// such as "a)|(b" cannot break out of the group and unanchor itself.
//
// Compiling is bounded by RE2's own program-size budget (max_mem, 8 MiB per
// pattern) and by MAX_REGEX_LENGTH; matching needs no budget.
import RE2 from 're2';
import { StrataError } from './errors.js';

/** Longest pattern accepted, in characters. Config fields have their own, lower caps (a route path: 1024). */
export const MAX_REGEX_LENGTH = 4096;

/** A pattern RE2 cannot compile (syntax it does not have, or too large). */
export class RegexSyntaxError extends StrataError {
  constructor(readonly source: string, readonly reason: string) {
    super('ERR_STRATA_REGEX', `invalid regular expression ${JSON.stringify(source)}: ${reason} (RE2 syntax)`);
  }
  /** The message without the pattern, for a validator that names the field instead. */
  get issue(): string { return `invalid regular expression: ${this.reason} (RE2 syntax)`; }
}

export interface RegexOptions {
  /** The whole input must match (^(?:…)$). Default true. */
  full?: boolean;
  /** Case-insensitive. Default false. */
  ignoreCase?: boolean;
}

/** What a compiled pattern offers: a RegExp-compatible object backed by RE2. */
export type UserRegex = Pick<RegExp, 'test' | 'source'>;

/** Characters that are never RE2 syntax: a pattern of only these matches itself. */
const LITERAL = /^[A-Za-z0-9/_\-=&,;:@~%!#<>'"` ]*$/;

/**
 * Compiles a user-supplied pattern with RE2; throws RegexSyntaxError.
 *
 * Two shapes common in routes and policies skip the call into RE2 (about
 * 150 ns a match) for a string comparison with exactly RE2's full-match
 * meaning: a literal ("GET"), and a literal followed by ".*" ("/public/.*";
 * "." matches anything but "\n", as in RE2 without the s flag).
 */
export function compileRegex(src: string, o: RegexOptions = {}): UserRegex {
  const flags = o.ignoreCase ? 'i' : '';
  if (src.length > MAX_REGEX_LENGTH) throw new RegexSyntaxError(src.slice(0, 64) + '…', `longer than ${MAX_REGEX_LENGTH} characters`);
  let re: RE2;
  try {
    re = new RE2(src, flags);
  } catch (err) {
    throw new RegexSyntaxError(src, (err as Error).message);
  }
  if (o.full === false) return re;
  if (!o.ignoreCase) {
    if (LITERAL.test(src)) return { source: src, test: (s: string) => s === src };
    const head = src.slice(0, -2);
    if (src.endsWith('.*') && LITERAL.test(head)) return { source: src, test: (s: string) => s.startsWith(head) && s.indexOf('\n', head.length) < 0 };
  }
  return new RE2(`^(?:${src})$`, flags);
}

/** Why RE2 cannot compile src, or null: for validators that report rather than throw. */
export function regexIssue(src: string): string | null {
  try {
    compileRegex(src, { full: false });
    return null;
  } catch (err) {
    return (err as RegexSyntaxError).issue;
  }
}
