// The proxy's header rules (src/l7/proxy/headers.ts): the one-pass fast paths
// and the general list-editing path must agree on every input. Seeded random
// header lists (hop-by-hop fields, Connection options naming other fields,
// repeated X-Forwarded-For / Forwarded, names in any case as filters leave
// them) go through both; the outputs must be identical.
import { describe, expect, it } from 'vitest';
import { Prng } from '../src/util/prng.js';
import { addForwardingHeaders, forwardRequestHeaders, forwardResponseHeaders, stripHopByHop } from '../src/l7/proxy/headers.js';

const SEED = Number(process.env.STRATA_FUZZ_SEED ?? 0x5eed);
const ROUNDS = 5000;

const NAMES = ['connection', 'proxy-connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'content-length', 'expect',
  'host', 'x-forwarded-for', 'x-forwarded-proto', 'forwarded', 'x-a', 'x-b', 'accept', 'content-type', 'cookie', 'via'];

function randCase(r: Prng, s: string): string {
  return r.chance(0.3) ? [...s].map((c) => (r.chance(0.5) ? c.toUpperCase() : c)).join('') : s;
}

function value(r: Prng, name: string): string {
  if (name === 'connection' || name === 'proxy-connection') {
    const n = 1 + r.int(3);
    const parts: string[] = [];
    for (let i = 0; i < n; i++) parts.push(r.chance(0.3) ? ['close', 'keep-alive', 'Keep-Alive', 'upgrade'][r.int(4)]! : randCase(r, NAMES[r.int(NAMES.length)]!));
    return parts.join(r.chance(0.5) ? ', ' : ',');
  }
  if (name === 'x-forwarded-for') return `192.0.2.${r.int(255)}`;
  if (name === 'forwarded') return `for=198.51.100.${r.int(255)}`;
  return `v${r.int(1000)}`;
}

function headerList(r: Prng, lowercase: boolean): string[] {
  const h: string[] = [];
  const n = r.int(12);
  for (let i = 0; i < n; i++) {
    const name = NAMES[r.int(NAMES.length)]!;
    h.push(lowercase ? name : randCase(r, name), value(r, name));
  }
  return h;
}

describe('proxy header rules: fast paths and general path agree', () => {
  it(`request: forwardRequestHeaders() equals stripHopByHop() + addForwardingHeaders() on ${ROUNDS} random lists (seed 0x${SEED.toString(16)})`, () => {
    const r = new Prng(SEED);
    let named = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const src = headerList(r, r.chance(0.5));
      const client = ['127.0.0.1', '::ffff:10.0.0.1', '2001:db8::1'][r.int(3)]!;
      const proto = r.chance(0.5) ? 'http' : 'https';
      const host = ['a.example', 'b.example:8080', '[::1]:80', ''][r.int(4)]!;
      const fast = forwardRequestHeaders(src, 'up.example', client, proto, host);
      const general = src.slice();
      stripHopByHop(general);
      addForwardingHeaders(general, client, proto, 'up.example', host);
      if (JSON.stringify(fast) !== JSON.stringify(general)) expect({ seed: SEED, round: i, src, fast }).toEqual({ seed: SEED, round: i, src, fast: general });
      if (src.some((x, k) => k % 2 === 1 && /x-a|x-b|x-forwarded-for|forwarded|host/i.test(x) && /connection/i.test(src[k - 1]!))) named++;
    }
    expect(named).toBeGreaterThan(100); // Connection options naming end-to-end fields were exercised
  });

  it(`response: forwardResponseHeaders() keeps exactly what stripHopByHop() keeps on ${ROUNDS} random lists (seed 0x${SEED.toString(16)})`, () => {
    const r = new Prng(SEED + 1);
    for (let i = 0; i < ROUNDS; i++) {
      const raw = headerList(r, true); // the fast path takes what our parser produced: lowercase names
      const got: string[] = [];
      forwardResponseHeaders(raw, { _addTrusted: (n, v) => { got.push(n, v); } });
      const general = raw.slice();
      stripHopByHop(general);
      if (JSON.stringify(got) !== JSON.stringify(general)) expect({ seed: SEED, round: i, raw, got }).toEqual({ seed: SEED, round: i, raw, got: general });
    }
  });

  it('X-Forwarded-For and Forwarded extend every received value; a Connection option naming them drops the received ones', () => {
    const out = forwardRequestHeaders(['x-forwarded-for', '192.0.2.1', 'X-Forwarded-For', '192.0.2.2', 'forwarded', 'for=192.0.2.1', 'x-a', '1'], 'up', '::ffff:10.0.0.9', 'https', 'Shop.example:8443');
    expect(out).toEqual(['x-a', '1', 'host', 'up', 'x-forwarded-for', '192.0.2.1, 192.0.2.2, 10.0.0.9', 'x-forwarded-proto', 'https', 'forwarded', 'for=192.0.2.1, for=10.0.0.9;proto=https;host="Shop.example:8443"']);
    const dropped = forwardRequestHeaders(['connection', 'X-Forwarded-For', 'x-forwarded-for', '192.0.2.1', 'x-a', '1'], 'up', '2001:db8::1', 'http', 'a');
    expect(dropped).toEqual(['x-a', '1', 'host', 'up', 'x-forwarded-for', '2001:db8::1', 'x-forwarded-proto', 'http', 'forwarded', 'for="[2001:db8::1]";proto=http;host=a']);
  });
});
