// Running a serve/proxy command on the lab's server side. When the default
// lab is up and we are not already in its server namespace, the command
// re-executes itself there with nsenter (not `ip netns exec`, which remounts
// /sys and would hide the bpffs pins), forwarding signals and the exit code.
//
// The child dies with its parent, so a supervisor that SIGKILLs the parent
// does not leave an orphan holding the TAP device or the AF_XDP socket (the
// next start would fail with EBUSY). The exec chain is
// `setpriv --pdeathsig TERM -- nsenter --net=… -- node …`: the parent-death
// signal is set before the execs and survives them (prctl(2)
// PR_SET_PDEATHSIG; nsenter with only --net does not fork, so node is the
// parent's direct child). TERM, not KILL, so the child closes its transport
// (detaches XDP, closes the TAP). The signal may come more than once: the
// kernel sends it each time the child is handed to another of the dying
// parent's threads; a second TERM makes the proxy skip its drain, which is
// what we want once nobody supervises the child. Two gaps are closed in the
// child: the parent may die before setpriv's prctl (then no signal comes:
// the child finds its ppid is no longer the pid passed in
// STRATA_REEXEC_PARENT and exits at once), and cleanup may hang (once the
// parent is gone, the child exits PARENT_GONE_GRACE_MS later, whatever it is
// still waiting for).
// Entering the namespace in-process is not an option: setns(CLONE_NEWNET)
// moves one thread, and node's other threads (libuv pool: DNS, fs) would
// stay behind.
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { Lab, chooseLab } from '../lab/topo.js';
import { tryRun } from '../util/run.js';
import type { TransportKind } from '../l7/transport/types.js';

const GUARD = 'STRATA_IN_LAB_NETNS';
/** The re-exec parent's pid, for the child to notice it is gone. */
const PARENT = 'STRATA_REEXEC_PARENT';
/** Once the parent is gone, the child's graceful close gets this long before it exits anyway. */
export const PARENT_GONE_GRACE_MS = 3000;
/** How often the child looks at its ppid to arm that deadline (the signal itself comes from PDEATHSIG). */
const PARENT_POLL_MS = 500;
/** Exit status of a child whose parent died (128 + SIGTERM, as if the signal had killed it). */
const EXIT_PARENT_GONE = 143;

/** True when this process's network namespace is the one pinned at /run/netns/NAME. */
export function inNamespace(name: string): boolean {
  try {
    const self = statSync('/proc/self/ns/net');
    const ns = statSync(`/run/netns/${name}`);
    return self.ino === ns.ino && self.dev === ns.dev;
  } catch { return false; }
}

export interface LabPlacement {
  /** The lab whose server side we run on, or null (no lab: loopback defaults). */
  lab: Lab | null;
  /** Set when we must re-exec into the lab's server namespace first. */
  reexec: boolean;
}

export function placement(): LabPlacement {
  // STRATA_LAB=off: run where we are, whatever the lab (tests on loopback).
  if (process.env.STRATA_LAB === 'off') return { lab: null, reexec: false };
  // STRATA_LAB_PREFIX names another lab than the default (tests use private labs).
  const lab = new Lab({ prefix: chooseLab(undefined).prefix });
  if (!lab.isUp()) return { lab: null, reexec: false };
  if (process.env[GUARD] === '1') { followParent(); return { lab, reexec: false }; }
  if (inNamespace(lab.serverNs)) return { lab, reexec: false };
  return { lab, reexec: true };
}

/** The address a transport serves on by default. */
export function defaultHost(kind: TransportKind, lab: Lab | null): string {
  if (lab === null) return kind === 'kernel' ? '127.0.0.1' : kind === 'tap' ? '10.201.0.2' : '10.200.0.3';
  return kind === 'kernel' ? lab.kernelAddr : kind === 'tap' ? lab.tapAddr : lab.afxdpAddr;
}

/** Re-runs this very command line inside ns; resolves with its exit code. */
export function reexecIn(ns: string): Promise<number> {
  const argv = ['setpriv', '--pdeathsig', 'TERM', '--', 'nsenter', `--net=/run/netns/${ns}`, '--',
    process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: { ...process.env, [GUARD]: '1', [PARENT]: String(process.pid) } });
  const forward = (sig: NodeJS.Signals): void => { child.kill(sig); };
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
  for (const s of sigs) process.on(s, forward);
  return new Promise((resolve) => {
    child.on('error', (e) => { process.stderr.write(`strata: setpriv/nsenter failed: ${e.message}\n`); resolve(1); });
    child.on('exit', (code, signal) => {
      for (const s of sigs) process.off(s, forward);
      resolve(code ?? (signal ? 128 + (({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1, SIGKILL: 9 } as Record<string, number>)[signal] ?? 1) : 1));
    });
  });
}

/**
 * In the re-exec'd child: exit now if the parent died before the
 * parent-death signal was armed, and otherwise make sure that once it dies
 * the child is gone within PARENT_GONE_GRACE_MS (PDEATHSIG's SIGTERM starts
 * the graceful close; this bounds it). A no-op outside a re-exec.
 */
function followParent(): void {
  const parent = Number(process.env[PARENT]);
  if (!Number.isInteger(parent) || parent <= 1) return;
  if (process.ppid !== parent) {
    process.stderr.write(`strata: parent ${parent} exited before this child started; exiting\n`);
    process.exit(EXIT_PARENT_GONE);
  }
  const poll = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(poll);
    // process.exit runs the exit handlers (XDP detach); the kernel closes the TAP and XSK fds.
    setTimeout(() => process.exit(EXIT_PARENT_GONE), PARENT_GONE_GRACE_MS).unref();
  }, PARENT_POLL_MS);
  poll.unref();
}

/** Resolves on the first SIGINT/SIGTERM. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals): void => { process.off('SIGINT', on); process.off('SIGTERM', on); resolve(s); };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}

/**
 * AF_XDP in copy mode hands the stack frames exactly as the veth peer sent
 * them; with the peer's TX checksum offload on, TCP checksums would be left
 * partial and every segment dropped. Turn it off on the lab's client side.
 */
export function prepareLabForAfxdp(lab: Lab): void {
  tryRun(lab.client(['ethtool', '-K', lab.clientIface, 'tx', 'off']));
}
