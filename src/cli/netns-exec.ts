// Running a serve/proxy command on the lab's server side. When the default
// lab is up and we are not already in its server namespace, the command
// re-executes itself there with nsenter (not `ip netns exec`, which remounts
// /sys and would hide the bpffs pins), forwarding signals and the exit code.
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { Lab } from '../lab/topo.js';
import { tryRun } from '../util/run.js';
import type { TransportKind } from '../l7/transport/types.js';

const GUARD = 'STRATA_IN_LAB_NETNS';

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
  const lab = new Lab({ prefix: process.env.STRATA_LAB_PREFIX || undefined });
  if (!lab.isUp()) return { lab: null, reexec: false };
  if (inNamespace(lab.serverNs) || process.env[GUARD] === '1') return { lab, reexec: false };
  return { lab, reexec: true };
}

/** The address a transport serves on by default. */
export function defaultHost(kind: TransportKind, lab: Lab | null): string {
  if (lab === null) return kind === 'kernel' ? '127.0.0.1' : kind === 'tap' ? '10.201.0.2' : '10.200.0.3';
  return kind === 'kernel' ? lab.kernelAddr : kind === 'tap' ? lab.tapAddr : lab.afxdpAddr;
}

/** Re-runs this very command line inside ns; resolves with its exit code. */
export function reexecIn(ns: string): Promise<number> {
  const argv = ['nsenter', `--net=/run/netns/${ns}`, '--', process.execPath, ...process.execArgv, ...process.argv.slice(1)];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: 'inherit', env: { ...process.env, [GUARD]: '1' } });
  const forward = (sig: NodeJS.Signals): void => { child.kill(sig); };
  const sigs: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'];
  for (const s of sigs) process.on(s, forward);
  return new Promise((resolve) => {
    child.on('error', (e) => { process.stderr.write(`strata: nsenter failed: ${e.message}\n`); resolve(1); });
    child.on('exit', (code, signal) => {
      for (const s of sigs) process.off(s, forward);
      resolve(code ?? (signal ? 128 + (({ SIGINT: 2, SIGTERM: 15, SIGHUP: 1, SIGKILL: 9 } as Record<string, number>)[signal] ?? 1) : 1));
    });
  });
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
