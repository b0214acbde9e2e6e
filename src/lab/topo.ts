// The lab: two network namespaces joined by a veth pair, plus a TAP device.
//
//   client ns                         server ns
//   c0 10.200.0.1/24  <== veth ==>    s0 10.200.0.2/24 (kernel)
//                                        10.200.0.3    (dataplane on AF_XDP, same veth;
//                                                       XDP steers it to the socket)
//   route 10.201.0.0/24 via .2        tap0 10.201.0.1/24 (kernel side)
//                                        10.201.0.2    (dataplane on TAP)
//
// Every later test and benchmark runs here. A Lab is named by a prefix so
// tests can build private copies (unique prefix) next to the default one.
// Which lab a command means is decided in one place, chooseLab(): --prefix,
// else STRATA_LAB_PREFIX, else 'strata'; every command that touches a lab
// says which one on stderr (labLine), so a forgotten variable cannot point a
// destructive command at the wrong lab unnoticed.
// up() is idempotent; down() removes namespaces, links, XDP programs and
// bpffs pins that belong to the lab.
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { run, tryRun, inNetns } from '../util/run.js';
import { StrataError } from '../util/errors.js';

export interface LabJson {
  client: { netns: string; iface: string; addr: string };
  server: { netns: string; iface: string };
  targets: { kernel: { addr: string }; tap: { addr: string }; afxdp: { addr: string } };
}

export interface LabOptions {
  /** Names the namespaces `${prefix}-client` and `${prefix}-server`. Default 'strata'. */
  prefix?: string;
  /** Queues (channels) on the veth; the AF_XDP socket binds queue 0..n-1. Default 1. */
  queues?: number;
}

export const BPF_PIN_ROOT = '/sys/fs/bpf/strata';

/** The lab a command uses when nothing names another. */
export const DEFAULT_LAB_PREFIX = 'strata';

/** Which lab a command means, and why. */
export interface LabChoice {
  prefix: string;
  source: '--prefix' | 'STRATA_LAB_PREFIX' | 'default';
  /** STRATA_LAB_PREFIX when a different --prefix won over it (said aloud, never silently). */
  overridden: string | null;
}

/** --prefix wins (a flag is the more deliberate choice), then STRATA_LAB_PREFIX, then the default lab. */
export function chooseLab(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): LabChoice {
  const fromEnv = env.STRATA_LAB_PREFIX || undefined;
  if (flag !== undefined) return { prefix: flag, source: '--prefix', overridden: fromEnv !== undefined && fromEnv !== flag ? fromEnv : null };
  if (fromEnv !== undefined) return { prefix: fromEnv, source: 'STRATA_LAB_PREFIX', overridden: null };
  return { prefix: DEFAULT_LAB_PREFIX, source: 'default', overridden: null };
}

/** "lab: x (STRATA_LAB_PREFIX; namespaces x-client, x-server)": what commands print on stderr. */
export function labLine(c: LabChoice): string {
  const over = c.overridden !== null ? `, overriding STRATA_LAB_PREFIX=${c.overridden}` : '';
  return `lab: ${c.prefix} (${c.source}${over}; namespaces ${c.prefix}-client, ${c.prefix}-server)`;
}

export class Lab {
  readonly prefix: string;
  readonly clientNs: string;
  readonly serverNs: string;
  readonly clientIface = 'c0';
  readonly serverIface = 's0';
  readonly tapIface = 'tap0';
  readonly clientAddr = '10.200.0.1';
  readonly kernelAddr = '10.200.0.2';
  readonly afxdpAddr = '10.200.0.3';
  readonly tapKernelAddr = '10.201.0.1';
  readonly tapAddr = '10.201.0.2';
  readonly vethPrefixLen = 24;
  readonly tapPrefixLen = 24;
  readonly queues: number;

  constructor(opts: LabOptions = {}) {
    this.prefix = opts.prefix ?? DEFAULT_LAB_PREFIX;
    if (!/^[a-z0-9][a-z0-9-]{0,30}$/.test(this.prefix)) throw new StrataError('ERR_STRATA_LAB', `bad lab prefix '${this.prefix}'`);
    this.clientNs = `${this.prefix}-client`;
    this.serverNs = `${this.prefix}-server`;
    this.queues = opts.queues ?? 1;
  }

  /** bpffs directory for this lab's server interface (the XDP loader pins maps here). */
  get pinDir(): string { return `${BPF_PIN_ROOT}/${this.serverNs}_${this.serverIface}`; }

  isUp(): boolean {
    return existsSync(`/run/netns/${this.clientNs}`) && existsSync(`/run/netns/${this.serverNs}`)
      && tryRun(['ip', '-n', this.serverNs, 'link', 'show', this.serverIface]).status === 0;
  }

  /** Creates the lab; a no-op for the parts that already exist. */
  up(): void {
    for (const ns of [this.clientNs, this.serverNs]) {
      if (!existsSync(`/run/netns/${ns}`)) run(['ip', 'netns', 'add', ns]);
      run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    if (tryRun(['ip', '-n', this.serverNs, 'link', 'show', this.serverIface]).status !== 0) {
      // A half-made pair (e.g. after a crash) is removed before recreating it.
      tryRun(['ip', '-n', this.clientNs, 'link', 'del', this.clientIface]);
      run(['ip', 'link', 'add', this.clientIface, 'netns', this.clientNs,
        'numtxqueues', String(this.queues), 'numrxqueues', String(this.queues), 'type', 'veth',
        'peer', 'name', this.serverIface, 'netns', this.serverNs,
        'numtxqueues', String(this.queues), 'numrxqueues', String(this.queues)]);
    }
    this.ensureAddr(this.clientNs, this.clientIface, `${this.clientAddr}/${this.vethPrefixLen}`);
    this.ensureAddr(this.serverNs, this.serverIface, `${this.kernelAddr}/${this.vethPrefixLen}`);
    run(['ip', '-n', this.clientNs, 'link', 'set', this.clientIface, 'up']);
    // The client must put finished checksums on the wire: with TX checksum
    // offload, veth hands CHECKSUM_PARTIAL packets to the peer, and copy-mode
    // AF_XDP (and TAP) pass them up unfinished, so a userspace stack would
    // drop them as corrupt. (This also turns off TSO on c0; benchmarks that
    // measure the kernel with TSO turn it back on for their run.)
    run(inNetns(this.clientNs, ['ethtool', '-K', this.clientIface, 'tx', 'off']));
    run(['ip', '-n', this.serverNs, 'link', 'set', this.serverIface, 'up']);
    if (tryRun(['ip', '-n', this.serverNs, 'link', 'show', this.tapIface]).status !== 0) {
      run(['ip', '-n', this.serverNs, 'tuntap', 'add', 'mode', 'tap', 'name', this.tapIface]);
    }
    this.ensureAddr(this.serverNs, this.tapIface, `${this.tapKernelAddr}/${this.tapPrefixLen}`);
    run(['ip', '-n', this.serverNs, 'link', 'set', this.tapIface, 'up']);
    run(['ip', '-n', this.clientNs, 'route', 'replace', '10.201.0.0/24', 'via', this.kernelAddr]);
    run(inNetns(this.serverNs, ['sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']));
  }

  private ensureAddr(ns: string, iface: string, cidr: string): void {
    const out = run(['ip', '-n', ns, '-o', 'addr', 'show', 'dev', iface]);
    if (!out.includes(` ${cidr} `)) run(['ip', '-n', ns, 'addr', 'add', cidr, 'dev', iface]);
  }

  /** Removes everything the lab made. Safe to call when nothing exists. */
  down(): void {
    // Detach XDP first so no program outlives the namespace through a pin.
    if (existsSync(`/run/netns/${this.serverNs}`)) {
      tryRun(['ip', '-n', this.serverNs, 'link', 'set', 'dev', this.serverIface, 'xdp', 'off']);
    }
    for (const ns of [this.clientNs, this.serverNs]) {
      if (existsSync(`/run/netns/${ns}`)) tryRun(['ip', 'netns', 'del', ns]);
    }
    removePins(this.pinDir);
  }

  toJSON(): LabJson {
    return {
      client: { netns: this.clientNs, iface: this.clientIface, addr: this.clientAddr },
      server: { netns: this.serverNs, iface: this.serverIface },
      targets: { kernel: { addr: this.kernelAddr }, tap: { addr: this.tapAddr }, afxdp: { addr: this.afxdpAddr } },
    };
  }

  /** argv run inside the client namespace. */
  client(argv: readonly string[]): string[] { return inNetns(this.clientNs, argv); }
  /** argv run inside the server namespace. */
  server(argv: readonly string[]): string[] { return inNetns(this.serverNs, argv); }
}

/** libxdp's own bpffs directory (dispatcher pins and its lock); it leaves it behind empty. */
const LIBXDP_PIN_DIR = '/sys/fs/bpf/xdp';

/** Removes a pin directory and, if they are then empty, the strata pin root and libxdp's directory. */
export function removePins(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  for (const d of [BPF_PIN_ROOT, LIBXDP_PIN_DIR]) {
    try {
      if (existsSync(d) && readdirSync(d).length === 0) rmSync(d, { recursive: true, force: true });
    } catch { /* still in use by another lab or program */ }
  }
}
