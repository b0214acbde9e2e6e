// Redaction of request targets before they enter a flow record or a log line.
//
// Query strings carry credentials often enough (`?api_key=…`, `?token=…`,
// presigned URLs) that strata hides their values by default, in every place a
// request target is written down: flow records (hence /flows, the follow
// stream, `strata flows`, `strata top`, flow exporters) and the proxy's
// access and verdict log. Parameter names are kept, so an operator still sees
// which endpoint and which options were used; each value becomes Hubble's
// marker (HUBBLE_REDACTED, as for redacted headers):
//
//   /search?q=cats&api_key=s3cr3t   ->  /search?q=HUBBLE_REDACTED&api_key=HUBBLE_REDACTED
//   /cb?s3cr3t                      ->  /cb?HUBBLE_REDACTED   (a bare token may be the secret)
//
// Hubble's own `--hubble-redact-http-urlquery` drops the query; Envoy's access
// log prints it whole. We keep the names (more useful, and still nothing
// secret in the usual case). Userinfo in an absolute-form target
// (`http://user:pw@host/`, which RFC 9110 §4.2.4 forbids senders to generate)
// is redacted too. `logging.showQueryStrings: true` turns all of this off.
//
// Cost: one indexOf('?') per target; nothing is allocated for a target
// without a query or userinfo.

/** Hubble's placeholder for a redacted value. */
export const REDACTED = 'HUBBLE_REDACTED';

/** How request targets are written into records and logs: 'redacted' (default) or 'all'. */
export type QueryMode = 'redacted' | 'all';

/** The request target with query values (and userinfo) replaced by REDACTED; the same string when there is nothing to hide. */
export function redactTarget(target: string): string {
  let t = target;
  if (t.charCodeAt(0) !== 47 /* / */) {
    // absolute-form: scheme://[userinfo@]authority/…
    const s = t.indexOf('://');
    if (s > 0) {
      const end = firstOf(t, s + 3);
      const at = t.lastIndexOf('@', end - 1);
      if (at > s) t = `${t.slice(0, s + 3)}${REDACTED}${t.slice(at)}`;
    }
  }
  const q = t.indexOf('?');
  if (q < 0) return t;
  let out = t.slice(0, q + 1);
  let i = q + 1;
  while (i <= t.length) {
    let amp = t.indexOf('&', i);
    if (amp < 0) amp = t.length;
    const eq = t.indexOf('=', i);
    if (amp > i) out += eq >= 0 && eq < amp ? `${t.slice(i, eq)}=${REDACTED}` : REDACTED;
    if (amp < t.length) out += '&';
    i = amp + 1;
  }
  return out;
}

/** The target as the mode says to write it. */
export function targetFor(target: string, mode: QueryMode | undefined): string {
  return mode === 'all' ? target : redactTarget(target);
}

/** Index of the first '/', '?' or '#' at or after from (the end of an authority), or the length. */
function firstOf(t: string, from: number): number {
  for (let i = from; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c === 47 || c === 63 || c === 35) return i;
  }
  return t.length;
}
