// Workloads of `strata bench`: each one measures something across transports
// and returns rows of the shared result schema (src/report/results.ts). raw
// is the first; tcp, http, proxy and mtls plug in here the same way.
import type { Lab } from '../lab/topo.js';
import type { ResultRow } from '../report/results.js';

export interface BenchContext {
  lab: Lab;
  /** Short runs (npm start). */
  quick: boolean;
  /** Seconds per measured point. */
  duration: number;
  /** Transports asked for on the command line, or null for the workload's default set. */
  transports: readonly string[] | null;
  /** Workload-specific options from the command line (--rate, --mode …), as strings. */
  options: ReadonlyMap<string, string>;
  progress: (line: string) => void;
}

export interface Workload {
  name: string;
  summary: string;
  /** Every transport the workload knows, in table order. */
  transports: readonly string[];
  run(ctx: BenchContext): Promise<ResultRow[]>;
  /** Lines that check the run against the workload's targets (for the report). */
  targets?(rows: readonly ResultRow[]): string[];
  /** Ends children and detaches programs after an interrupt. */
  interrupt?(): void;
}

const registry = new Map<string, () => Promise<Workload>>();

export function registerWorkload(name: string, load: () => Promise<Workload>): void { registry.set(name, load); }
export function workloadNames(): string[] { return [...registry.keys()]; }
export async function loadWorkload(name: string): Promise<Workload | undefined> { return registry.get(name)?.(); }

registerWorkload('raw', async () => (await import('./raw-workload.js')).rawWorkload);
registerWorkload('tcp', async () => (await import('./tcp.js')).tcpWorkload);
registerWorkload('http', async () => (await import('./http.js')).httpWorkload);
registerWorkload('proxy', async () => (await import('./proxy.js')).proxyWorkload);
registerWorkload('mtls', async () => (await import('./mtls.js')).mtlsWorkload);
