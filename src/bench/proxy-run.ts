// `strata proxy` as a child process of the benchmarks, compiled or from
// source alike: `node proxy-run.js --config F` runs src/cli/proxy.ts's main()
// exactly as the strata command does (with its errors printed as one line),
// whether or not `proxy` is wired into src/cli/main.ts yet, and without
// needing dist/ when the benchmark itself runs through tsx.
import { StrataError } from '../util/errors.js';

async function go(argv: string[]): Promise<number> {
  const { main } = await import('../cli/proxy.js');
  try {
    return await main(argv);
  } catch (e) {
    if (e instanceof StrataError) { process.stderr.write(`strata proxy: ${e.message} [${e.code}]\n`); return 1; }
    throw e;
  }
}

go(process.argv.slice(2)).then((code) => { process.exitCode = code; }, (e: unknown) => {
  process.stderr.write(`strata proxy: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exitCode = 1;
});
