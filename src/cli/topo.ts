// strata topo up|down|show [--json] [--prefix P]
// The lab is --prefix, else STRATA_LAB_PREFIX, else the default (chooseLab);
// which one is said on stderr before anything is done to it.
import { Lab, chooseLab, labLine } from '../lab/topo.js';
import { isRoot } from '../util/run.js';
import { parseArgs, UsageError } from './args.js';

export async function main(argv: string[]): Promise<number> {
  const a = parseArgs(argv, { booleans: ['json'], strings: ['prefix', 'queues'] });
  const sub = a.positionals[0];
  if (sub !== 'up' && sub !== 'down' && sub !== 'show') throw new UsageError('usage: strata topo up|down|show [--json] [--prefix P]');
  const choice = chooseLab(a.values.get('prefix'));
  const lab = new Lab({ prefix: choice.prefix, queues: a.values.has('queues') ? Number(a.values.get('queues')) : undefined });
  process.stderr.write(`${labLine(choice)}\n`);
  if (sub !== 'show' && !isRoot()) {
    process.stderr.write('strata topo: needs root (it creates network namespaces, veth and TAP devices)\n');
    return 1;
  }
  if (sub === 'up') {
    lab.up();
    process.stdout.write(`lab up: ${lab.clientNs} (${lab.clientAddr}) <-> ${lab.serverNs} [kernel ${lab.kernelAddr}, afxdp ${lab.afxdpAddr}, tap ${lab.tapAddr}]\n`);
    return 0;
  }
  if (sub === 'down') {
    lab.down();
    process.stdout.write(`lab down: ${lab.prefix}\n`);
    return 0;
  }
  const up = lab.isUp();
  if (a.flags.has('json')) {
    if (!up) { process.stdout.write(`${JSON.stringify({ up: false })}\n`); return 1; }
    process.stdout.write(`${JSON.stringify(lab.toJSON())}\n`);
    return 0;
  }
  if (!up) { process.stdout.write(`lab ${lab.prefix}: down\n`); return 1; }
  const j = lab.toJSON();
  process.stdout.write([
    `lab ${lab.prefix}: up`,
    `  client  netns=${j.client.netns} iface=${j.client.iface} addr=${j.client.addr}`,
    `  server  netns=${j.server.netns} iface=${j.server.iface}`,
    `  targets kernel=${j.targets.kernel.addr} tap=${j.targets.tap.addr} afxdp=${j.targets.afxdp.addr}`,
    '',
  ].join('\n'));
  return 0;
}
