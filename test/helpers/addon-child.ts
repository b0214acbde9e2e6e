// One hostile call into the native addon, in a process of its own so that a
// crash (SIGSEGV, a glibc abort) is reported to the test as the child's exit
// signal instead of taking the test runner down.
//   node --expose-gc --import tsx test/helpers/addon-child.ts CASE JSON
// Prints one JSON line: { result: 'threw', name, code } when the addon
// refused the call, or what the call did when it returned.
import { spawnSync } from 'node:child_process';
import { AfXdpLink } from '../../src/link/afxdp.js';
import { TapLink } from '../../src/link/tap.js';
import { Burst } from '../../src/link/types.js';
import { XdpProgram } from '../../src/xdp/program.js';
import { loadNative, type NativeTap, type NativeXsk } from '../../src/link/native.js';

const [kind, json] = process.argv.slice(2) as [string, string];
const a = JSON.parse(json) as { netns: string; iface: string; tap: string; clientNs: string; clientAddr: string; afxdpAddr: string; pinDir: string; tapPeer: string };
const say = (o: object): void => { process.stdout.write(`${JSON.stringify(o)}\n`); };

/** Calls f; the words of `big` past the first 8 (the descriptor array) that it wrote. */
function probe(f: (desc: Uint32Array) => number): void {
  const big = new Uint32Array(4096);
  const desc = big.subarray(0, 8);
  try {
    const n = f(desc);
    let past = 0;
    for (let i = 8; i < big.length; i++) if (big[i] !== 0) past++;
    say({ result: 'returned', n, past });
  } catch (e) {
    say({ result: 'threw', name: (e as Error).name, code: (e as { code?: string }).code, isRange: e instanceof RangeError });
  }
}

const xskOf = (l: AfXdpLink): NativeXsk => (l as unknown as { x: NativeXsk }).x;
const tapOf = (l: TapLink): NativeTap => (l as unknown as { t: NativeTap }).t;

switch (kind) {
  case 'xsk-alloc': {
    // start + n wraps to 0 in 32 bits: the old check passed and alloc wrote
    // every free frame's pair from desc[0] on, far past its 8 words.
    const l = AfXdpLink.open({ iface: a.iface, netns: a.netns, frameCount: 256, mode: 'copy' });
    probe((d) => xskOf(l).alloc(d, 0x80000000, 0x80000000));
    l.close();
    break;
  }
  case 'xsk-alloc-far': {
    const l = AfXdpLink.open({ iface: a.iface, netns: a.netns, frameCount: 64, mode: 'copy' });
    probe((d) => xskOf(l).alloc(d, 0xffffffff, 1));
    l.close();
    break;
  }
  case 'xsk-rx': {
    // Received frames in the RX ring, then rx() with a wrapping start + max.
    const prog = XdpProgram.attach({ iface: a.iface, netns: a.netns, pinDir: a.pinDir });
    try {
      prog.steer({ addr: a.afxdpAddr, proto: 'udp', portLo: 9000, portHi: 9001 });
      const l = AfXdpLink.open({ iface: a.iface, netns: a.netns, xdp: prog, frameCount: 256, frameSize: 2048, mode: 'copy' });
      const smac = [...l.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
      spawnSync('ip', ['-n', a.clientNs, 'neigh', 'replace', a.afxdpAddr, 'lladdr', smac, 'dev', 'c0']);
      spawnSync('nsenter', [`--net=/run/netns/${a.clientNs}`, process.execPath, '-e', `
        const s = require('node:dgram').createSocket('udp4');
        let sent = 0;
        s.bind(0, '${a.clientAddr}', () => { for (let i = 0; i < 32; i++) s.send(Buffer.alloc(64), 9000, '${a.afxdpAddr}', () => { if (++sent === 32) s.close(); }); });
      `]);
      spawnSync('sleep', ['0.3']);
      probe((d) => xskOf(l).rx(d, 0x80000000, 0x80000000));
      l.close();
    } finally {
      prog.detach();
    }
    break;
  }
  case 'tap-rx': {
    // desc + 2 * start wrapped to a pointer 16 GiB away: the first read of
    // a descriptor faulted.
    const l = TapLink.open({ name: a.tap, netns: a.netns, create: true, frameCount: 16 });
    probe((d) => tapOf(l).rx(d, 0xffffffff, 1));
    l.close();
    break;
  }
  case 'tap-transfer': {
    // Transfer the link's frame pool away, let the new owner be collected,
    // then receive: with a JS-owned pool the addon read()s into freed memory
    // (32 KiB: a malloc heap chunk, so glibc notices and aborts, or SIGSEGV).
    const l = TapLink.open({ name: a.tap, netns: a.netns, create: true, frameCount: 16 });
    spawnSync('ip', ['-n', a.netns, 'addr', 'add', `${a.tapPeer}/24`, 'dev', a.tap]);
    spawnSync('ip', ['-n', a.netns, 'link', 'set', a.tap, 'up']);
    let transferred: ArrayBuffer | null = structuredClone(l.mem.buffer, { transfer: [l.mem.buffer as ArrayBuffer] });
    transferred = null;
    void transferred;
    (globalThis as { gc?: () => void }).gc?.();
    // A neighbour on the TAP's subnet: the kernel sends ARP requests out of it.
    const peer = a.tapPeer.replace(/\.\d+$/, '.99');
    spawnSync('nsenter', [`--net=/run/netns/${a.netns}`, 'ping', '-c', '2', '-i', '0.2', '-W', '1', peer]);
    const b = new Burst(64);
    let frames = 0, arp = 0;
    for (let round = 0; round < 4; round++) {
      const n = l.recv(b);
      for (let i = 0; i < n; i++) {
        frames++;
        const off = b.off(i);
        if (l.mem[off + 12] === 0x08 && l.mem[off + 13] === 0x06) arp++;
      }
      l.free(b);
    }
    say({ result: 'returned', frames, arp, memBytes: l.mem.byteLength });
    l.close();
    break;
  }
  case 'tap-transfer-native': {
    // The addon's own buffer, transferred without the wrapper's guard: only
    // JS's view is detached, the addon keeps reading into mapped memory.
    const t = new (loadNative('tap').Tap)({ name: a.tap, netns: a.netns, create: true }, 1 << 20);
    spawnSync('ip', ['-n', a.netns, 'addr', 'add', `${a.tapPeer}/24`, 'dev', a.tap]);
    spawnSync('ip', ['-n', a.netns, 'link', 'set', a.tap, 'up']);
    const { port1, port2 } = new MessageChannel();
    port1.postMessage(t.mem, [t.mem]);
    port1.close(); port2.close();
    (globalThis as { gc?: () => void }).gc?.();
    const peer = a.tapPeer.replace(/\.\d+$/, '.98');
    spawnSync('nsenter', [`--net=/run/netns/${a.netns}`, 'ping', '-c', '2', '-i', '0.2', '-W', '1', peer]);
    const d = new Uint32Array(16);
    for (let i = 0; i < 8; i++) { d[2 * i] = i * 2048; d[2 * i + 1] = 2048; }
    const n = t.rx(d, 0, 8);
    say({ result: 'returned', n, memBytes: t.mem.byteLength });
    t.close();
    break;
  }
  default:
    throw new Error(`unknown case ${kind}`);
}
