/**
 * The quayfleet CLI: one image, one entry point, one command per process type. See the README's
 * command table; every command has --help.
 */
import { Command } from 'commander';
import { registerAccounts } from './commands/accounts.ts';
import { registerDlq } from './commands/dlq.ts';
import { registerGc } from './commands/gc.ts';
import { registerMigrate } from './commands/migrate.ts';
import { registerQueues } from './commands/queues.ts';
import { registerReplication } from './commands/replication.ts';
import { registerServeCommands } from './commands/serve.ts';
import { registerUploads } from './commands/uploads.ts';
import { registerStorage } from './commands/storage.ts';

const program = new Command();
program
  .name('quayfleet')
  .description('The background-work fleet of a Quay-compatible registry, and its OCI front end.')
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

registerServeCommands(program);
registerMigrate(program);
registerQueues(program);
registerAccounts(program);
registerGc(program);
registerReplication(program);
registerStorage(program);
registerDlq(program);
registerUploads(program);

await program.parseAsync(process.argv);
