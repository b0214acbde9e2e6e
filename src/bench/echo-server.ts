// The echo process of the raw-packet benchmark: one of the TypeScript
// versions, run by the orchestrator (src/bench/raw.ts) inside the lab's
// server namespace and pinned to its own CPU.
//
//   echo-server --transport afxdp --iface s0 --addr 10.200.0.3 --pin-dir DIR [--mode event|busy] [--burst 64]
//   echo-server --transport tap   --iface tap0 --addr 10.201.0.2 [--mode event|busy] [--burst 64]
//   echo-server --transport kernel --addr 10.200.0.2 [--port 7]
//
// afxdp and tap run the same UdpEcho pipeline (src/bench/udp-echo.ts) on
// AfXdpLink or TapLink; kernel is a node:dgram socket that sends every
// datagram back (the kernel's own UDP path, for comparison). The AF_XDP
// version does not attach XDP itself: the orchestrator attached strata's
// program and steered the address; this process only opens the pinned maps
// and puts its socket in the XSKMAP.
//
// Protocol with the orchestrator: one line "READY" on stdout when packets
// can flow; on SIGTERM or SIGINT, one JSON line of counters, then exit 0.
import dgram from 'node:dgram';
import { parseArgs, UsageError } from '../cli/args.js';
import type { Link } from '../link/types.js';
import { UdpEcho, runEcho, type EchoMode } from './udp-echo.js';

interface Running { stop(): Record<string, unknown> }

async function startLinkEcho(transport: 'afxdp' | 'tap', iface: string, addr: string, mode: EchoMode, burst: number, pinDir: string | undefined): Promise<Running> {
  let link: Link;
  let extra: () => Record<string, unknown>;
  if (transport === 'afxdp') {
    if (!pinDir) throw new UsageError('--pin-dir is required for afxdp');
    const { XdpProgram } = await import('../xdp/program.js');
    const { AfXdpLink } = await import('../link/afxdp.js');
    const xdp = XdpProgram.open({ iface, pinDir });
    const l = AfXdpLink.open({ iface, queue: 0, xdp, busyPoll: mode === 'busy' });
    link = l;
    extra = () => ({ xsk: l.xskStats(), info: l.info });
  } else {
    const { TapLink } = await import('../link/tap.js');
    const l = TapLink.open({ name: iface });
    link = l;
    extra = () => ({ tap: l.tapStats() });
  }
  const echo = new UdpEcho(link, { addrs: [addr], burst });
  const runner = runEcho(echo, mode);
  return {
    stop() {
      runner.stop();
      const out = { transport, mode, burst, echo: echo.stats(), link: link.stats(), ...extra() };
      link.close();
      return out;
    },
  };
}

async function startDgramEcho(addr: string, port: number): Promise<Running> {
  const sock = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  let rx = 0, sendErrors = 0;
  const onSent = (err: Error | null): void => { if (err) sendErrors++; };
  sock.on('message', (msg, rinfo) => {
    rx++;
    sock.send(msg, rinfo.port, rinfo.address, onSent);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind(port, addr, () => { sock.off('error', reject); resolve(); });
  });
  return {
    stop() {
      sock.close();
      return { transport: 'kernel', echo: { rx, echoed: rx - sendErrors, sendErrors } };
    },
  };
}

export async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { strings: ['transport', 'iface', 'addr', 'pin-dir', 'mode', 'burst', 'port'] });
  const transport = a.values.get('transport');
  const addr = a.values.get('addr');
  if (!addr) throw new UsageError('--addr is required');
  const mode = (a.values.get('mode') ?? 'event') as EchoMode;
  if (mode !== 'event' && mode !== 'busy') throw new UsageError('--mode must be event or busy');
  const burst = Number(a.values.get('burst') ?? 64);
  const port = Number(a.values.get('port') ?? 7);
  let running: Running;
  if (transport === 'afxdp' || transport === 'tap') {
    const iface = a.values.get('iface');
    if (!iface) throw new UsageError('--iface is required');
    running = await startLinkEcho(transport, iface, addr, mode, burst, a.values.get('pin-dir'));
  } else if (transport === 'kernel') {
    running = await startDgramEcho(addr, port);
  } else {
    throw new UsageError('--transport must be afxdp, tap or kernel');
  }
  process.stdout.write('READY\n');
  await new Promise<void>((resolve) => {
    const done = (): void => { resolve(); };
    process.once('SIGTERM', done);
    process.once('SIGINT', done);
  });
  process.stdout.write(`${JSON.stringify(running.stop())}\n`);
  return 0;
}

// Run as a program (not when imported by a test).
const self = process.argv[1] ?? '';
if (/echo-server\.(ts|js)$/.test(self)) {
  main(process.argv.slice(2)).then(
    (code) => { process.exitCode = code; },
    (e: unknown) => {
      const err = e as { message?: string; code?: string };
      process.stderr.write(`echo-server: ${err.message ?? String(e)}${err.code ? ` [${err.code}]` : ''}\n`);
      process.exitCode = 1;
    },
  );
}
