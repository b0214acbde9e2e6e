// Conntrack against the Linux kernel's TCP: real connections between the
// lab's client and server namespaces (nc on both ends, window scaling,
// timestamps, SACK, delayed ACKs as Linux does them), captured by tcpdump on
// the client's veth and replayed through Conntrack.track() as a middle box
// would see them. The tracker must follow every connection to its end
// without judging a single kernel packet invalid, including under 2% random
// loss (retransmissions, SACK recovery, out-of-order arrival).
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CT_RESULT } from '../src/stack/registration.js';
import { Conntrack, CT_HOOK } from '../src/stack/conntrack/index.js';
import { inNetns, run } from '../src/util/run.js';
import { privateLab, rootSkipReason } from './helpers/lab.js';
import type { Lab } from '../src/lab/topo.js';

const skip = rootSkipReason();
const dir = mkdtempSync(join(tmpdir(), 'strata-ct-'));
let lab: Lab;

/** Yields [timeMs, ipPacket] for each Ethernet/IPv4 frame of a classic pcap file. */
function* pcapPackets(file: string): Generator<[number, Uint8Array]> {
  const b = readFileSync(file);
  if (b.readUInt32LE(0) !== 0xa1b2c3d4) throw new Error('not a little-endian microsecond pcap');
  if (b.readUInt32LE(20) !== 1) throw new Error(`link type ${b.readUInt32LE(20)}, expected Ethernet`);
  for (let off = 24; off + 16 <= b.length;) {
    const ms = b.readUInt32LE(off) * 1000 + b.readUInt32LE(off + 4) / 1000;
    const incl = b.readUInt32LE(off + 8);
    const frame = new Uint8Array(b.buffer, b.byteOffset + off + 16, incl);
    off += 16 + incl;
    if (frame.length < 34 || frame[12] !== 0x08 || frame[13] !== 0x00) continue;
    // Captured with a small snaplen: rebuild the datagram at its full length
    // (the payload bytes do not matter to conntrack, its length does).
    const total = (frame[16]! << 8) | frame[17]!;
    const ip = new Uint8Array(Math.max(total, frame.length - 14));
    ip.set(frame.subarray(14));
    yield [ms, ip];
  }
}

interface Capture { proc: ChildProcess; stderr: string[] }

async function startCapture(file: string, filter: string): Promise<Capture> {
  // --immediate-mode: without it libpcap hands packets over in blocks with a
  // 1 s timeout, and the block pending at SIGINT is lost.
  // Headers only and a 32 MB ring, so a busy machine does not make tcpdump drop.
  const argv = inNetns(lab.clientNs, ['tcpdump', '-i', 'c0', '--immediate-mode', '-U', '-n', '-s', '128', '-B', '32768', '-w', file, filter]);
  const p = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  const stderr: string[] = [];
  await new Promise<void>((resolve, reject) => {
    p.stderr!.on('data', (d: Buffer) => { stderr.push(d.toString()); if (stderr.join('').includes('listening on')) resolve(); });
    p.on('exit', (c) => reject(new Error(`tcpdump exited ${c}: ${stderr.join('')}`)));
  });
  return { proc: p, stderr };
}

/** Stops tcpdump; returns how many packets it says the kernel dropped. */
async function stopCapture(c: Capture): Promise<number> {
  await new Promise((r) => setTimeout(r, 300)); // let the last frames reach the file (-U flushes per packet)
  const done = new Promise<void>((resolve) => c.proc.on('exit', () => resolve()));
  c.proc.kill('SIGINT');
  await done;
  const m = /(\d+) packets? dropped by kernel/.exec(c.stderr.join(''));
  if (m === null) throw new Error(`no tcpdump statistics: ${c.stderr.join('')}`);
  return Number(m[1]);
}

function sh(ns: string, script: string): string {
  return run(inNetns(ns, ['sh', '-c', script]), { timeout: 90_000 });
}

/** Replays a capture; returns the tracker and the verdicts per packet. */
function replay(file: string): { ct: Conntrack; verdicts: number[]; packets: number } {
  const ct = new Conntrack({ seed: 11 });
  const verdicts: number[] = [];
  let t0 = -1;
  let packets = 0;
  for (const [ms, ip] of pcapPackets(file)) {
    if (t0 < 0) t0 = ms;
    packets++;
    verdicts.push(ct.track(ip, 0, CT_HOOK.IN, ms - t0));
  }
  return { ct, verdicts, packets };
}

describe.skipIf(skip !== null)('conntrack on kernel TCP traffic', () => {
  beforeAll(() => {
    lab = privateLab('ct');
    lab.up();
  });
  afterAll(() => {
    try { tryDown(); } finally { if (!process.env.CT_KEEP) rmSync(dir, { recursive: true, force: true }); }
  });
  function tryDown(): void {
    try { sh(lab.clientNs, 'iptables -F INPUT; iptables -F OUTPUT'); } catch { /* the lab may be gone already */ }
    lab.down();
  }

  /**
   * One nc transfer, captured. A capture the kernel dropped packets from is
   * not what a middle box would see (it would show ACKs for unseen data):
   * such a run is repeated, up to three times.
   */
  async function transfer(name: string, bytes: number): Promise<ReturnType<typeof replay>> {
    for (let attempt = 1; ; attempt++) {
      const file = join(dir, `${name}-${attempt}.pcap`);
      const cap = await startCapture(file, 'tcp port 5000');
      let dropped: number;
      try {
        const server = spawn('nsenter', [`--net=/run/netns/${lab.serverNs}`, '--', 'sh', '-c', 'nc -l 10.200.0.2 5000 > /dev/null'], { stdio: 'ignore' });
        const served = new Promise<void>((resolve) => server.on('exit', () => resolve()));
        await new Promise((r) => setTimeout(r, 300));
        sh(lab.clientNs, `head -c ${bytes} /dev/urandom | nc -N -w 30 10.200.0.2 5000`);
        await served;
      } finally {
        dropped = await stopCapture(cap);
      }
      if (dropped === 0) return replay(file);
      if (attempt === 3) throw new Error(`tcpdump dropped packets in ${attempt} attempts: the capture cannot be judged`);
    }
  }

  it('follows a 4 MB transfer from handshake to TIME_WAIT with no invalid packet', async () => {
    const { ct, verdicts, packets } = await transfer('clean', 4 << 20);
    expect(packets).toBeGreaterThan(100);
    expect(ct.invalid.toJSON()).toEqual({ malformed: 0, fragment: 0, bad_flags: 0, invalid_state: 0, out_of_window: 0, no_entry: 0, policy: 0 });
    expect(ct.size).toBe(1);
    const e = ct.snapshot()[0]!;
    expect([e.src, e.dport, e.state]).toEqual([0x0ac80001, 5000, 'TIME_WAIT']);
    expect(e.packets[0] + e.packets[1]).toBe(packets);
    expect(e.bytes[0]).toBeGreaterThan(4 << 20);
    expect(verdicts[0]).toBe(CT_RESULT.CONNECTING);
    expect(verdicts.at(-1) === CT_RESULT.CLOSED_BY_ORIGINATOR || verdicts.at(-1) === CT_RESULT.CLOSED_BY_RESPONDER).toBe(true);
    expect(verdicts.filter((v) => v === CT_RESULT.DROP)).toHaveLength(0);
  });

  it('follows a transfer under 2% random loss both ways (retransmissions, SACK) with no invalid packet', async () => {
    sh(lab.clientNs, 'iptables -A INPUT -p tcp --sport 5000 -m statistic --mode random --probability 0.02 -j DROP;'
      + ' iptables -A OUTPUT -p tcp --dport 5000 -m statistic --mode random --probability 0.02 -j DROP');
    try {
      const { ct, packets } = await transfer('lossy', 2 << 20);
      expect(packets).toBeGreaterThan(100);
      expect(ct.invalid.total()).toBe(0);
      const e = ct.snapshot()[0]!;
      expect(e.state).toBe('TIME_WAIT');
      expect(e.packets[0] + e.packets[1]).toBe(packets);
    } finally {
      sh(lab.clientNs, 'iptables -F INPUT; iptables -F OUTPUT');
    }
  });

  it('sees a connection refused as RESET', async () => {
    const file = join(dir, 'refused.pcap');
    const cap = await startCapture(file, 'tcp port 5000');
    try {
      const r = spawn('nsenter', [`--net=/run/netns/${lab.clientNs}`, '--', 'nc', '-z', '-w', '3', '10.200.0.2', '5000'], { stdio: 'ignore' });
      await new Promise<void>((resolve) => r.on('exit', () => resolve()));
    } finally {
      expect(await stopCapture(cap)).toBe(0);
    }
    const { ct, verdicts } = replay(file);
    expect(verdicts).toEqual([CT_RESULT.CONNECTING, CT_RESULT.RESET]);
    expect(ct.snapshot()[0]!.state).toBe('CLOSE');
  });
});
