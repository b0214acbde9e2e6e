// The strata command: one entry point, one module per subcommand, loaded on
// demand so `strata topo` does not pay for the HTTP stack. Errors with a
// stable code are printed as one line, never as a stack trace.
import { StrataError } from '../util/errors.js';

type Command = { summary: string; load: () => Promise<{ main(argv: string[]): Promise<number> }> };

const commands: Record<string, Command> = {
  topo: { summary: 'up|down|show [--json]   the two-namespace lab', load: () => import('./topo.js') },
  xdp: { summary: 'status|attach|detach    the XDP steering program on an interface', load: () => import('./xdp.js') },
  bench: { summary: '[--quick] [--transports …]  benchmarks: kernel vs TAP vs AF_XDP', load: () => import('./bench.js') },
  serve: { summary: '--transport kernel|tap|afxdp --app hello|echo   HTTP or raw TCP server', load: () => import('./serve.js') },
  proxy: { summary: '--config F [--check]    the routing proxy (node proxy)', load: () => import('./proxy.js') },
  flows: { summary: '[--follow] [--filter k=v]  flow records from the admin listener', load: () => import('./flows.js') },
  top: { summary: '[--once]                the busiest flows, live', load: () => import('./top.js') },
  certs: { summary: 'ca|svid|dev             development CA and SPIFFE SVIDs', load: () => import('./certs.js') },
};

function usage(): string {
  const lines = ['usage: strata <command> [options]', '', 'commands:'];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  return `${lines.join('\n')}\n`;
}

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const cmd = commands[name];
  if (!cmd) {
    process.stderr.write(`strata: unknown command '${name}'\n${usage()}`);
    return 2;
  }
  try {
    const mod = await cmd.load();
    return await mod.main(rest);
  } catch (e) {
    if (e instanceof StrataError) {
      process.stderr.write(`strata ${name}: ${e.message} [${e.code}]\n`);
      return 1;
    }
    throw e;
  }
}
