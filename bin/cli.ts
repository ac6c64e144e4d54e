/**
 * The quayfleet CLI: one image, one entry point, one command per process type. See the README's
 * command table; every command has --help.
 *
 * A command's module (and what it imports) is loaded only when that command runs: `quayfleet
 * worker gcworker` never loads the admin commands' code, which keeps a pod's start-up short. Help,
 * an unknown command or a command missing from COMMAND_MODULES loads them all.
 */
import { readFileSync } from 'node:fs';
import { Command } from 'commander';

type Register = (program: Command) => void;

/** Each module under bin/commands/ with the top-level commands it registers. */
const COMMAND_MODULES: readonly { commands: readonly string[]; load: () => Promise<Register> }[] = [
  { commands: ['registry', 'worker', 'all'], load: async () => (await import('./commands/serve.ts')).registerServeCommands },
  { commands: ['migrate'], load: async () => (await import('./commands/migrate.ts')).registerMigrate },
  { commands: ['queues'], load: async () => (await import('./commands/queues.ts')).registerQueues },
  { commands: ['users', 'orgs'], load: async () => (await import('./commands/accounts.ts')).registerAccounts },
  { commands: ['gc'], load: async () => (await import('./commands/gc.ts')).registerGc },
  { commands: ['replication'], load: async () => (await import('./commands/replication.ts')).registerReplication },
  { commands: ['storage'], load: async () => (await import('./commands/storage.ts')).registerStorage },
  { commands: ['dlq'], load: async () => (await import('./commands/dlq.ts')).registerDlq },
  { commands: ['uploads'], load: async () => (await import('./commands/uploads.ts')).registerUploads },
  { commands: ['config'], load: async () => (await import('./commands/config.ts')).registerConfig },
];

/** package.json's version: one level up from bin/cli.ts in a checkout and from dist/cli.js (the bundle) in a build. */
function version(): string {
  for (const candidate of ['../package.json']) {
    try {
      return (JSON.parse(readFileSync(new URL(candidate, import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      // not there: try the next
    }
  }
  return 'unknown';
}

const program = new Command();
program
  .name('quayfleet')
  .description('The background-work fleet of a Quay-compatible registry, and its OCI front end.')
  // bin/quayfleet.js says whether it runs the compiled build or the sources (development).
  .version(`${version()} (${process.env.QUAYFLEET_BUILD ?? 'sources'})`)
  .showHelpAfterError()
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

const asked = process.argv[2];
const wanted = COMMAND_MODULES.filter((module) => asked !== undefined && module.commands.includes(asked));
for (const module of wanted.length > 0 ? wanted : COMMAND_MODULES) (await module.load())(program);

await program.parseAsync(process.argv);
