// The routing table: longest prefix match, then metric; connected routes
// resolve to the destination itself, gateway routes to the gateway.
import { describe, expect, test } from 'vitest';
import { RouteTable, prefixMask } from '../src/stack/route.js';
import { ip4FromString as ip } from '../src/stack/registration.js';

describe('RouteTable', () => {
  const t = new RouteTable();
  t.add({ prefix: ip('10.0.0.1'), prefixLen: 24, src: ip('10.0.0.1') });
  t.add({ prefix: ip('10.1.0.0'), prefixLen: 16, gateway: ip('10.0.0.254'), src: ip('10.0.0.1') });
  t.add({ prefix: ip('10.1.2.0'), prefixLen: 24, gateway: ip('10.0.0.253'), src: ip('10.0.0.1') });
  t.add({ prefix: 0, prefixLen: 0, gateway: ip('10.0.0.1') + 0x99, src: ip('10.0.0.1'), metric: 100 });
  t.add({ prefix: 0, prefixLen: 0, gateway: ip('10.0.0.200'), src: ip('10.0.0.1'), metric: 10 });

  test('connected, longest prefix, default by metric', () => {
    expect(t.lookup(ip('10.0.0.7'))).toBeGreaterThanOrEqual(0);
    expect(t.nextHop).toBe(ip('10.0.0.7'));
    t.lookup(ip('10.1.2.3'));
    expect(t.nextHop).toBe(ip('10.0.0.253'));
    t.lookup(ip('10.1.9.9'));
    expect(t.nextHop).toBe(ip('10.0.0.254'));
    t.lookup(ip('8.8.8.8'));
    expect(t.nextHop).toBe(ip('10.0.0.200'));
    expect(t.src).toBe(ip('10.0.0.1'));
  });

  test('the limited broadcast stays on-link', () => {
    expect(t.lookup(0xffffffff)).toBeGreaterThanOrEqual(0);
    expect(t.nextHop).toBe(0xffffffff);
  });

  test('remove, and no route', () => {
    const u = new RouteTable();
    u.add({ prefix: ip('192.168.1.9'), prefixLen: 24, src: ip('192.168.1.9') });
    expect(u.list()[0]!.prefix).toBe(ip('192.168.1.0'));
    expect(u.lookup(ip('192.168.2.1'))).toBe(-1);
    expect(u.remove(ip('192.168.1.0'), 24)).toBe(1);
    expect(u.lookup(ip('192.168.1.1'))).toBe(-1);
    expect(() => u.add({ prefix: 0, prefixLen: 33, src: 0 })).toThrow();
    expect(prefixMask(0)).toBe(0);
    expect(prefixMask(32)).toBe(0xffffffff);
    expect(prefixMask(20)).toBe(0xfffff000);
  });
});
