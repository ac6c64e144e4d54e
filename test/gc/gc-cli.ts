/** Runs the `gc` command alone, as bin/cli.ts would (for the CLI test). */
import { Command } from 'commander';
import { registerGc } from '../../bin/commands/gc.ts';

const program = new Command().exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));
registerGc(program);
await program.parseAsync(process.argv);
