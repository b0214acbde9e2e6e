// Route matching (src/l7/proxy/router.ts) and the consistent-hash balancers
// (src/l7/proxy/lb.ts): a realistic table of 200 HTTPRoute rules (exact,
// prefix, regex, header and query matches over exact and wildcard hosts),
// matched against a mix of requests, plus ring-hash and Maglev picks.
// Batched per tinybench iteration. Run: npx tsx bench/micro/route-match.bench.ts
import { Bench } from 'tinybench';
import { Router, type RouteRequest } from '../../src/l7/proxy/router.js';
import type { HTTPRoute } from '../../src/l7/proxy/types.js';
import { Host, HostSet } from '../../src/l7/proxy/hosts.js';
import { createLoadBalancer } from '../../src/l7/proxy/lb.js';
import { Prng } from '../../src/util/prng.js';

const BATCH = 256;
const time = Number(process.env.BENCH_TIME_MS ?? 500);

const routes: HTTPRoute[] = [];
for (let r = 0; r < 20; r++) {
  routes.push({
    name: `svc-${r}`,
    hostnames: r % 4 === 0 ? [`svc${r}.example.com`] : r % 4 === 1 ? [`*.team${r}.example.com`] : [],
    rules: Array.from({ length: 10 }, (_, i) => ({
      matches: [i % 5 === 0 ? { path: { type: 'Exact' as const, value: `/svc${r}/item/${i}` } }
        : i % 5 === 1 ? { path: { type: 'RegularExpression' as const, value: `/svc${r}/v[0-9]+/res${i}/.*` } }
        : i % 5 === 2 ? { path: { type: 'PathPrefix' as const, value: `/svc${r}/api` }, headers: [{ name: 'x-version', value: `v${i}` }] }
        : i % 5 === 3 ? { path: { type: 'PathPrefix' as const, value: `/svc${r}/q` }, queryParams: [{ name: 'env', value: `e${i}` }] }
        : { path: { type: 'PathPrefix' as const, value: `/svc${r}/p${i}` }, method: 'GET' }],
      backendRefs: [{ name: `b${r}` }],
    })),
  });
}
const router = new Router(routes);

function req(method: string, host: string, target: string, headers: Record<string, string> = {}): RouteRequest {
  const q = target.indexOf('?');
  return { method, host, path: q < 0 ? target : target.slice(0, q), query: q < 0 ? '' : target.slice(q + 1), header: (n) => headers[n] };
}
const mix: RouteRequest[] = [
  req('GET', 'svc0.example.com', '/svc0/item/5'),
  req('GET', 'a.team1.example.com', '/svc1/v2/res6/x/y'),
  req('GET', 'any.example.net', '/svc2/api/list', { 'x-version': 'v7' }),
  req('GET', 'any.example.net', '/svc3/q/search?a=1&env=e8'),
  req('GET', 'any.example.net', '/svc18/p9/deep/path'),
  req('GET', 'nomatch.example.net', '/nothing/here'),
];
let sink = 0;

const hosts = Array.from({ length: 16 }, (_, i) => new Host(`10.0.${i >> 8}.${i & 255}`, 8080));
const ring = createLoadBalancer('RING_HASH', new HostSet(hosts), new Prng(1));
const maglev = createLoadBalancer('MAGLEV', new HostSet(hosts.slice()), new Prng(1));
const keys = Array.from({ length: 1024 }, (_, i) => `session-${i * 7919}`);

const bench = new Bench({ time, warmupTime: 100 });
for (const [i, r] of mix.entries()) {
  bench.add(`match #${i} ${r.host}${r.path}`, () => {
    for (let k = 0; k < BATCH; k++) { const m = router.match(r); sink ^= m === null ? 1 : m.ruleIndex; }
  });
}
bench
  .add('ring hash pick (16 hosts)', () => { for (let k = 0; k < BATCH; k++) sink ^= ring.pick(keys[k & 1023]!)!.port; })
  .add('maglev pick (16 hosts, M=65537)', () => { for (let k = 0; k < BATCH; k++) sink ^= maglev.pick(keys[k & 1023]!)!.port; });

await bench.run();
console.table(bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state };
  const ops = r.throughput.mean * BATCH;
  return { task: t.name, 'ops/s': Math.round(ops).toLocaleString('en-US'), 'ns/op': (1e9 / ops).toFixed(1), '±%': r.throughput.rme.toFixed(2), samples: r.latency.samplesCount };
}));
if (sink === 0.5) console.log(sink); // keep the results observable
