// bpf/strata_shared.h and src/xdp/shared.ts must agree: the header is parsed
// here and every constant compared, so a change on one side fails loudly.
import { describe, expect, it } from 'vitest';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../src/link/native.js';
import * as S from '../src/xdp/shared.js';

const header = readFileSync(join(repoRoot, 'bpf/strata_shared.h'), 'utf8');
const defines = new Map<string, string>();
for (const m of header.matchAll(/^#define[ \t]+(STRATA_\w+)[ \t]+(\S+)/gm)) defines.set(m[1]!, m[2]!.replace(/^"|"$/g, ''));
const num = (k: string): number => {
  const v = defines.get(k);
  if (v === undefined) throw new Error(`${k} missing from strata_shared.h`);
  return Number(v);
};

describe('strata_shared.h <-> src/xdp/shared.ts', () => {
  it('has the same program and map (pin) names', () => {
    expect(defines.get('STRATA_PROG_NAME')).toBe(S.PROG_NAME);
    expect(defines.get('STRATA_MAP_XSKS')).toBe(S.MAP.xsks);
    expect(defines.get('STRATA_MAP_STEER_RULES')).toBe(S.MAP.steerRules);
    expect(defines.get('STRATA_MAP_STEER_ADDRS')).toBe(S.MAP.steerAddrs);
    expect(defines.get('STRATA_MAP_DENY_SRC')).toBe(S.MAP.denySrc);
    expect(defines.get('STRATA_MAP_DENY_SRC_PORT')).toBe(S.MAP.denySrcPort);
    expect(defines.get('STRATA_MAP_COUNTERS')).toBe(S.MAP.counters);
    expect(defines.get('STRATA_MAP_META')).toBe(S.MAP.meta);
    expect(defines.get('STRATA_MAP_XSK_BOUND')).toBe(S.MAP.xskBound);
  });

  it('has the same limits and key constants', () => {
    expect(num('STRATA_MAX_QUEUES')).toBe(S.MAX_QUEUES);
    expect(num('STRATA_MAX_STEER_RULES')).toBe(S.MAX_STEER_RULES);
    expect(num('STRATA_MAX_STEER_ADDRS')).toBe(S.MAX_STEER_ADDRS);
    expect(num('STRATA_MAX_DENY')).toBe(S.MAX_DENY);
    expect(num('STRATA_STEER_RANGES')).toBe(S.STEER_RANGES);
    expect(num('STRATA_FAMILY_V4')).toBe(S.FAMILY_V4);
    expect(num('STRATA_FAMILY_V6')).toBe(S.FAMILY_V6);
    expect(num('STRATA_PROTO_ANY')).toBe(S.PROTO_ANY);
  });

  it('numbers every verdict reason the same way', () => {
    const fromHeader: Record<string, number> = {};
    for (const [k, v] of defines) if (k.startsWith('STRATA_R_') && k !== 'STRATA_R__MAX') fromHeader[k.slice('STRATA_R_'.length).toLowerCase()] = Number(v);
    expect(fromHeader).toEqual({ ...S.REASON });
    expect(num('STRATA_R__MAX')).toBe(S.REASON_MAX);
    expect(S.REASON_NAMES.length).toBe(S.REASON_MAX);
    S.REASON_NAMES.forEach((n, i) => expect(S.REASON[n]).toBe(i));
  });

  it.skipIf(!existsSync(join(repoRoot, 'bpf/strata_xdp.o')))('lays the map keys and values out as the BPF object says (BTF sizes)', async () => {
    // The compiled object's BTF knows the real struct sizes; bpftool prints them.
    const { tryRun } = await import('../src/util/run.js');
    const obj = join(repoRoot, 'bpf/strata_xdp.o');
    const r = tryRun(['bpftool', 'btf', 'dump', 'file', obj]);
    expect(r.status, `bpftool btf dump: ${r.stderr}`).toBe(0);
    const size = (name: string): number => Number(new RegExp(`STRUCT '${name}' size=(\\d+)`).exec(r.stdout)?.[1]);
    expect(size('strata_steer_key')).toBe(S.STEER_KEY_SIZE);
    expect(size('strata_steer_val')).toBe(S.STEER_VAL_SIZE);
    expect(size('strata_addr_key')).toBe(S.ADDR_KEY_SIZE);
    expect(size('strata_deny_key')).toBe(S.DENY_KEY_SIZE);
    expect(size('strata_deny_port_key')).toBe(S.DENY_PORT_KEY_SIZE);
    expect(size('strata_counter')).toBe(S.COUNTER_SIZE);
    expect(size('strata_meta')).toBe(S.META_SIZE);
  });
});
