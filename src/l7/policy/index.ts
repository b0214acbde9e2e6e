// L7 policy: public surface of src/l7/policy.
export type {
  PolicySpec, IngressRuleSpec, IngressDenyRuleSpec, IdentitySelectorSpec, CidrSetSpec, PortSpec, PortRuleSpec, HttpRuleSpec,
  HeaderMatchSpec, PolicyRequest, Verdict, VerdictAction, L4DenyEntry,
} from './types.js';
export { compilePolicies, checkPolicies, PolicySet, ListenerPolicy, PolicyCompileError, NO_POLICY, type PolicyIssue } from './compile.js';
export { l4DenyEntries, type ListenerPort } from './l4.js';
export { parsePrefix, parseAddrInto, prefixContains, subtractPrefixes, type Prefix } from './cidr.js';
export { verdictLogRecord, forbiddenResponse } from './verdict.js';
