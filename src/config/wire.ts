// Config values that reach the wire: request paths (match values and the
// URLRewrite/RequestRedirect path modifiers), hostnames, header names and
// header values. Each is validated as the Gateway API v1 CRDs validate it
// (HTTPPathMatch's CEL rules, Hostname/PreciseHostname, HTTPHeaderName,
// HTTPHeader's length limits), and control characters are refused in all
// of them, whatever the CRD says: a CR or LF in a rewritten path or a header
// value would start a new header line upstream (RFC 9112 §2.2), and other
// controls (\v, \f, NUL) are not field-content (RFC 9110 §5.5).
//
// Header values are written as latin1 (one byte per character), so a
// character above U+00FF would lose its high byte: U+010A would go out as LF.
// They are refused too.

/** Gateway API HTTPHeaderName: an RFC 9110 token, at most MAX_HEADER_NAME characters. */
export const HEADER_NAME = /^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/;
export const MAX_HEADER_NAME = 256;
/** Gateway API HTTPHeader.value: 1 to 4096 characters. */
export const MAX_HEADER_VALUE = 4096;
/** Gateway API Hostname: a DNS name, optionally with a leading "*." label. */
export const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Gateway API PreciseHostname: no wildcard. */
export const PRECISE_HOSTNAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const MAX_HOSTNAME = 253;
/** Gateway API HTTPPathMatch.value and HTTPPathModifier: at most 1024 characters. */
export const MAX_PATH = 1024;
/** Gateway API HTTPPathMatch.value's character rule (RFC 3986 pchar and "/"). */
const PATH_CHARS = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$/;
/** Not field-content: C0 controls but HTAB, DEL, and what latin1 cannot carry. */
const NOT_ON_THE_WIRE = /[\x00-\x08\x0a-\x1f\x7f\u0100-\uffff]/;

/** The first control character (or one above U+00FF) in v, named; or null. */
export function controlCharIssue(v: string): string | null {
  const m = NOT_ON_THE_WIRE.exec(v);
  if (m === null) return null;
  const cp = m[0].codePointAt(0)!;
  const name = `U+${cp.toString(16).toUpperCase().padStart(4, '0')}`;
  return cp > 0x7f ? `must not contain characters above U+00FF (found ${name})` : `must not contain control characters (found ${name})`;
}

/** Gateway API's rules for Exact/PathPrefix match values, applied to path modifiers too. */
export function pathValueIssue(v: string): string | null {
  const ctl = controlCharIssue(v);
  if (ctl) return ctl;
  if (!v.startsWith('/')) return 'must be an absolute path starting with "/"';
  if (v.includes('//')) return 'must not contain "//"';
  if (/\/\.\.?(\/|$)/.test(v)) return 'must not contain "/./" or "/../" segments';
  if (/%2f/i.test(v)) return 'must not contain "%2f" or "%2F"';
  if (v.includes('#')) return 'must not contain "#"';
  if (!PATH_CHARS.test(v)) return `must only contain valid characters (matching ${PATH_CHARS.source})`;
  return null;
}
