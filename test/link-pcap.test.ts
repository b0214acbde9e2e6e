import { describe, expect, test, afterAll } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { MemLink } from '../src/link/mem.js';
import { PcapLink } from '../src/link/pcap.js';
import { Burst } from '../src/link/types.js';
import { VirtualClock } from '../src/util/clock.js';
import { sum16, finish, pseudo4 } from '../src/stack/wire/checksum.js';

const dir = mkdtempSync(join(tmpdir(), 'strata-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Writes a complete Ethernet/IPv4/UDP frame with valid checksums so tcpdump
// decodes every layer (not just "unknown ethertype").
function udpFrame(mem: Uint8Array, off: number, srcPort: number, payload: string): number {
  const dv = new DataView(mem.buffer, mem.byteOffset + off);
  const src = 0x0ac80001, dst = 0x0ac80003;
  mem.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], off);
  const p = Buffer.from(payload);
  const ipLen = 20 + 8 + p.length;
  dv.setUint8(14, 0x45); dv.setUint8(15, 0); dv.setUint16(16, ipLen); dv.setUint16(18, 1); dv.setUint16(20, 0x4000);
  dv.setUint8(22, 64); dv.setUint8(23, 17); dv.setUint16(24, 0); dv.setUint32(26, src); dv.setUint32(30, dst);
  dv.setUint16(24, finish(sum16(mem, off + 14, 20)));
  dv.setUint16(34, srcPort); dv.setUint16(36, 9000); dv.setUint16(38, 8 + p.length); dv.setUint16(40, 0);
  mem.set(p, off + 42);
  const c = finish(sum16(mem, off + 34, 8 + p.length, pseudo4(src, dst, 17, 8 + p.length)));
  dv.setUint16(40, c === 0 ? 0xffff : c);
  return 14 + ipLen;
}

describe('PcapLink', () => {
  test('a capture of sent and received frames reads back with tcpdump -r', () => {
    const clock = new VirtualClock(1_700_000_000_000);
    const [a, b] = MemLink.pair({ seed: 1, clock });
    const path = join(dir, 'cap.pcap');
    const pa = new PcapLink(a, path, { clock });
    const out = new Burst(8);
    expect(pa.alloc(out, 3)).toBe(3);
    for (let i = 0; i < 3; i++) out.setLen(i, udpFrame(pa.mem, out.off(i), 40000 + i, `hello ${i}`));
    expect(pa.send(out)).toBe(3);
    // b echoes one frame back so the capture holds both directions.
    const inb = new Burst(8);
    expect(b.recv(inb)).toBe(3);
    b.free(inb);
    b.alloc(out, 1);
    out.setLen(0, udpFrame(b.mem, out.off(0), 9000, 'reply'));
    b.send(out);
    clock.advance(1.5);
    expect(pa.recv(inb)).toBe(1);
    pa.free(inb);
    pa.close();

    const r = spawnSync('tcpdump', ['-nn', '-r', path, '-tt'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatch(/^1700000000\.000000 IP 10\.200\.0\.1\.40000 > 10\.200\.0\.3\.9000: UDP, length 7/);
    expect(lines[2]).toContain('10.200.0.1.40002 > 10.200.0.3.9000');
    expect(lines[3]).toMatch(/^1700000000\.001500 IP 10\.200\.0\.1\.9000 > 10\.200\.0\.3\.9000: UDP, length 5/);
    // tcpdump -vv verifies the checksums we wrote: none is reported bad.
    const v = spawnSync('tcpdump', ['-nn', '-vv', '-r', path], { encoding: 'utf8' });
    expect(v.stdout).not.toMatch(/bad (udp )?cksum/i);
    expect(pa.recorded).toBe(4);
  });
});
