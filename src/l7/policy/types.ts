// L7 policy as written by users: CiliumNetworkPolicy's ingress rules
// (docs.cilium.io, "Layer 7 Examples" and the CiliumNetworkPolicy CRD),
// adapted to a proxy whose peers are SPIFFE identities instead of pod labels.
//
//   endpointSelector        -> selector.listeners (no selector: every listener)
//   ingress[].fromEndpoints -> fromIdentities (exact SPIFFE ID, trust domain,
//                              trust domain + path prefix)
//   ingress[].fromCIDR / fromCIDRSet {cidr, except}   (IPv4 and IPv6)
//   ingress[].toPorts[] {ports: [{port, protocol}], rules: {http: [...]}}
//   http rule: method, path, host (regexes, anchored as Cilium anchors them),
//              headers ["Name", "Name: value"], headerMatches [{name, value}]
//   ingressDeny[]: L3/L4 only (no rules.http), as in Cilium; deny wins.
//
// Semantics, as Cilium's: policies are additive; a request is allowed if any
// ingress rule of any policy selecting the listener allows it and no
// ingressDeny rule matches it. Once at least one policy selects a listener,
// everything not allowed is denied (default deny); a listener no policy
// selects allows everything.

export interface PolicySpec {
  name: string;
  selector?: { listeners?: string[] };
  ingress?: IngressRuleSpec[];
  ingressDeny?: IngressDenyRuleSpec[];
}

/** Exactly one of spiffeId or trustDomain; pathPrefix only with trustDomain (segment-wise, like Gateway API PathPrefix). */
export interface IdentitySelectorSpec {
  spiffeId?: string;
  trustDomain?: string;
  pathPrefix?: string;
}

export interface CidrSetSpec {
  cidr: string;
  except?: string[];
}

export interface PortSpec {
  port: number | string;
  /** TCP (default) or ANY */
  protocol?: 'TCP' | 'ANY';
}

export interface HeaderMatchSpec {
  name: string;
  /** exact value; omit to require presence only */
  value?: string;
}

export interface HttpRuleSpec {
  method?: string;
  path?: string;
  host?: string;
  /** "Name" (present) or "Name: value" (exact), as in Cilium */
  headers?: string[];
  headerMatches?: HeaderMatchSpec[];
}

export interface PortRuleSpec {
  ports?: PortSpec[];
  rules?: { http?: HttpRuleSpec[] };
}

export interface IngressRuleSpec {
  fromIdentities?: IdentitySelectorSpec[];
  fromCIDR?: string[];
  fromCIDRSet?: CidrSetSpec[];
  toPorts?: PortRuleSpec[];
}

export interface IngressDenyRuleSpec {
  fromIdentities?: IdentitySelectorSpec[];
  fromCIDR?: string[];
  fromCIDRSet?: CidrSetSpec[];
  toPorts?: { ports?: PortSpec[] }[];
}

/** What the evaluator reads from a request. Header names are looked up in lower case. */
export interface PolicyRequest {
  /** destination port of the listener that accepted the connection */
  port: number;
  /** source address as the transport reports it (IPv4, IPv6 or IPv4-mapped IPv6) */
  srcAddr: string;
  /** validated peer identity (mTLS), or null on plaintext listeners */
  identity: { readonly spiffeId: string; readonly trustDomain: string; readonly path: string } | null;
  method: string;
  /** the canonical origin-form target (normalised path and query, src/l7/proxy/canonical.ts), as Envoy's normalised :path that Cilium matches */
  path: string;
  /** the canonical authority, host[:port] (lowercase host; the absolute-form URI's when it has one) */
  host: string;
  /** value of the header (name given in lower case), or undefined; several values joined with ", " */
  header(lowerName: string): string | undefined;
}

export type VerdictAction = 'allow' | 'deny';

/**
 * The outcome for one request. Verdicts are built once at compile time and
 * returned by reference: treat them as read-only.
 */
export interface Verdict {
  readonly action: VerdictAction;
  readonly allowed: boolean;
  /** policy name, or null for the built-in verdicts */
  readonly policy: string | null;
  /** e.g. "ingress[0].toPorts[1].rules.http[2]", "ingressDeny[0]", "default-deny", "no-policy" */
  readonly rule: string;
  readonly reason: string;
}

/** An L3/L4 deny that can be enforced before L7: a source prefix and, optionally, a destination port. */
export interface L4DenyEntry {
  /** canonical prefix text, e.g. "10.0.0.0/8", "2001:db8::/32" */
  prefix: string;
  family: 4 | 6;
  prefixLen: number;
  /** destination port; absent = every port */
  port?: number;
  protocol: 'TCP' | 'ANY';
  /** where it came from, for logs: "policy/ingressDeny[0]" */
  source: string;
}
