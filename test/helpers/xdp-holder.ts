// A process that attaches strata's XDP program and holds it until killed:
// the subject of the crash-recovery and signal tests.
//   node --import tsx test/helpers/xdp-holder.ts NETNS IFACE PINDIR ADDR
import { XdpProgram } from '../../src/xdp/program.js';

const [netns, iface, pinDir, addr] = process.argv.slice(2) as [string, string, string, string];
const p = XdpProgram.attach({ iface, netns, pinDir, mode: 'auto' });
p.steer({ addr });
process.stdout.write(`${JSON.stringify({ id: p.id, mode: p.mode, recovered: p.recovered })}\n`);
setInterval(() => { /* hold */ }, 1 << 30);
