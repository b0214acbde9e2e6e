// Turning a deny verdict into what the server does with it: a 403 and one
// structured log record. Built only on the deny path, so allocation here is
// fine; the allow path never calls these.
import type { PolicyRequest, Verdict } from './types.js';

export interface VerdictLogRecord {
  msg: 'policy-verdict';
  action: Verdict['action'];
  listener: string;
  policy: string | null;
  rule: string;
  reason: string;
  src: string;
  port: number;
  identity: string | null;
  method: string;
  path: string;
  host: string;
}

export function verdictLogRecord(listener: string, v: Verdict, req: PolicyRequest): VerdictLogRecord {
  return {
    msg: 'policy-verdict', action: v.action, listener, policy: v.policy, rule: v.rule, reason: v.reason,
    src: req.srcAddr, port: req.port, identity: req.identity?.spiffeId ?? null, method: req.method, path: req.path, host: req.host,
  };
}

/** The 403 the server answers a denied request with (the body names no rule: the log does). */
export function forbiddenResponse(): { status: 403; headers: [string, string][]; body: string } {
  return { status: 403, headers: [['content-type', 'text/plain']], body: 'Access denied\r\n' };
}
