// A private lab with strata's stack on one of its userspace transports.
import type { Lab } from '../../src/lab/topo.js';
import { StackTransport } from '../../src/l7/transport/index.js';
import { run } from '../../src/util/run.js';
import { privateLab } from './lab.js';

/** Brings a private lab up and opens the stack on `kind` at the lab's address for it; the caller closes both (on failure, the lab is removed here). */
export async function openStackLab(kind: 'tap' | 'afxdp', tag: string): Promise<{ lab: Lab; t: StackTransport; addr: string }> {
  const lab = privateLab(tag);
  lab.up();
  try {
    if (kind === 'afxdp') {
      // The veth peer must send complete checksums: AF_XDP copy mode hands us the frame as is.
      run(lab.client(['ethtool', '-K', lab.clientIface, 'tx', 'off']));
      const addr = lab.afxdpAddr;
      return { lab, addr, t: await StackTransport.open('afxdp', { iface: lab.serverIface, netns: lab.serverNs, pinDir: lab.pinDir, addr }) };
    }
    const addr = lab.tapAddr;
    return { lab, addr, t: await StackTransport.open('tap', { iface: lab.tapIface, netns: lab.serverNs, addr, gateway: lab.tapKernelAddr }) };
  } catch (e) {
    lab.down(); // the caller never gets a lab to remove
    throw e;
  }
}
