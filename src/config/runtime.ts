// Turning a validated config into the runtime objects this part of strata
// owns: one TlsContextManager per tls entry, the compiled policy set, and
// the L3/L4 deny entries for the XDP deny map / conntrack.
import { TlsContextManager } from '../l7/tls/context.js';
import { TlsContextError } from '../l7/tls/errors.js';
import { compilePolicies, type PolicySet } from '../l7/policy/compile.js';
import { l4DenyEntries } from '../l7/policy/l4.js';
import type { L4DenyEntry } from '../l7/policy/types.js';
import type { ProxyConfig } from './types.js';

/** One context manager per tls entry (watching its files when `watch` is set). Throws TlsContextError naming the entry; closes what it opened. */
export function createTlsContexts(cfg: ProxyConfig): Map<string, TlsContextManager> {
  const out = new Map<string, TlsContextManager>();
  try {
    for (const t of cfg.tls) {
      try {
        out.set(t.name, new TlsContextManager({
          certFile: t.certFile, keyFile: t.keyFile, caFile: t.caFile,
          requireClientCert: t.requireClientCert, watch: t.watch,
          ...(t.trustDomains ? { trustDomains: t.trustDomains } : {}),
        }));
      } catch (err) {
        throw new TlsContextError(`tls ${t.name}: ${(err as Error).message}`, { cause: err });
      }
    }
  } catch (err) {
    for (const m of out.values()) m.close();
    throw err;
  }
  return out;
}

/** The config's policies, compiled (they were validated by the loader, so this does not throw for a loaded config). */
export function configPolicies(cfg: ProxyConfig): PolicySet {
  return compilePolicies(cfg.policies);
}

/** L3/L4 denies of the config, one entry per prefix and listener port. */
export function configL4DenyEntries(cfg: ProxyConfig, set: PolicySet = configPolicies(cfg)): L4DenyEntry[] {
  return l4DenyEntries(set, cfg.listeners.map((l) => ({ name: l.name, port: l.port })));
}
