// Header parse on the receive path (src/stack/wire/): Ethernet, IPv4 with its
// header checksum verified, and TCP with every option parsed into the one
// reused TcpOptions record — what the stack does for each segment before any
// protocol logic. Batched per tinybench iteration, no allocation inside.
// Run: npx tsx bench/micro/header-parse.bench.ts
import { Bench } from 'tinybench';
import { ethHeaderLen, ethType } from '../../src/stack/wire/ethernet.js';
import { WIRE_OK, ipv4Check, ipv4Dst, ipv4HeaderLen, ipv4Protocol, ipv4Src, ipv4TotalLen } from '../../src/stack/wire/ipv4.js';
import { parseTcpOptions, tcpAck, tcpDstPort, tcpFlags, tcpHeaderLen, tcpHeaderOk, tcpSeq, tcpSrcPort, tcpWindow, TcpOptions } from '../../src/stack/wire/tcp.js';
import { finish, sum16 } from '../../src/stack/wire/checksum.js';

const BATCH = 256;
const time = Number(process.env.BENCH_TIME_MS ?? 500);

// A 1514-byte Ethernet/IPv4/TCP data segment with MSS-less options as Linux
// sends them mid-connection: NOP NOP TS (12 bytes), and one with SACK blocks.
function segment(sack: boolean): Uint8Array {
  const f = new Uint8Array(1514);
  f.set([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00], 0);
  const optLen = sack ? 12 + 20 : 12;
  const ip = 14, tcp = ip + 20, hl = 20 + optLen;
  const total = 1500;
  f.set([0x45, 0, total >> 8, total & 255, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 200, 0, 1, 10, 200, 0, 3], ip);
  const c = finish(sum16(f, ip, 20));
  f[ip + 10] = c >> 8; f[ip + 11] = c & 255;
  f.set([0x9c, 0x40, 0x1f, 0x40, 1, 2, 3, 4, 5, 6, 7, 8, (hl / 4) << 4, 0x18, 0x01, 0xf5, 0, 0, 0, 0], tcp);
  const o = tcp + 20;
  f.set([1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 2, 0], o);
  if (sack) f.set([1, 1, 5, 18, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, 0, 0x30, 0, 0, 0, 0x40, 0], o + 12);
  return f;
}

const plain = segment(false);
const sacked = segment(true);
const opts = new TcpOptions();
let sink = 0;

function parse(f: Uint8Array): boolean {
  const eh = ethHeaderLen(f, 0, f.length);
  if (eh < 0 || ethType(f, 0, eh) !== 0x0800) return false;
  const ip = eh;
  if (ipv4Check(f, ip, f.length - ip) !== WIRE_OK) return false;
  const ihl = ipv4HeaderLen(f, ip);
  const tl = ipv4TotalLen(f, ip);
  sink ^= ipv4Src(f, ip) ^ ipv4Dst(f, ip) ^ ipv4Protocol(f, ip);
  const t = ip + ihl;
  if (!tcpHeaderOk(f, t, tl - ihl)) return false;
  sink ^= tcpSrcPort(f, t) ^ tcpDstPort(f, t) ^ tcpSeq(f, t) ^ tcpAck(f, t) ^ tcpFlags(f, t) ^ tcpWindow(f, t) ^ tcpHeaderLen(f, t);
  if (!parseTcpOptions(f, t, opts)) return false;
  sink ^= opts.tsVal ^ opts.sackCount;
  return true;
}

// The frames must take the whole path, or the numbers below measure an early exit.
if (!parse(plain) || opts.sackCount !== 0 || !parse(sacked) || opts.sackCount !== 2 || !opts.hasTimestamps) {
  throw new Error('header-parse bench: the test frames do not parse fully');
}

const bench = new Bench({ time, warmupTime: 100 });
bench
  .add('eth + ipv4 (checksum verified) + tcp, timestamps', () => { for (let k = 0; k < BATCH; k++) parse(plain); })
  .add('eth + ipv4 (checksum verified) + tcp, timestamps + 2 SACK blocks', () => { for (let k = 0; k < BATCH; k++) parse(sacked); });

await bench.run();
console.table(bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state };
  const ops = r.throughput.mean * BATCH;
  return { task: t.name, 'ops/s': Math.round(ops).toLocaleString('en-US'), 'ns/op': (1e9 / ops).toFixed(1), '±%': r.throughput.rme.toFixed(2), samples: r.latency.samplesCount };
}));
if (sink === 0.5) console.log(sink);
