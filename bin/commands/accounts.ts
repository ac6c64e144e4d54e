/** `quayfleet users create` and `quayfleet orgs create`: the first accounts of a new registry. */
import type { Command } from 'commander';
import { createOrganizationAccount, createUserAccount } from '../../shared/db/accounts.ts';
import { migrate } from '../../shared/db/migrate.ts';
import { createPool, withTransaction } from '../../shared/db/pool.ts';
import { setSuperuser } from '../../shared/db/namespaces.ts';
import { boot, fail } from '../boot.ts';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

async function withDb<T>(name: string, fn: (db: ReturnType<typeof createPool>) => Promise<T>): Promise<T> {
  const booted = await boot(name, { redis: false, allowEmbedded: true });
  // A fresh embedded database has no schema yet; migrations are idempotent.
  await migrate(booted.dbUri);
  const db = createPool({ connectionString: booted.dbUri, max: 2 });
  try {
    return await fn(db);
  } catch (error) {
    fail((error as Error).message);
  } finally {
    await db.end();
    await booted.stopEmbedded();
  }
}

/** Registers `users create` and `orgs create`. */
export function registerAccounts(program: Command): void {
  const users = program.command('users').description('manage users');
  users
    .command('create')
    .description('create a user')
    .argument('<name>', 'username')
    .requiredOption('--password-stdin', 'read the password from standard input')
    .option('--email <email>', 'email address')
    .option('--superuser', 'make the user a superuser (in addition to SUPER_USERS in config.yaml)')
    .action(async (name: string, options: { email?: string; superuser?: boolean }) => {
      const password = await readStdin();
      if (!password) fail('no password on standard input');
      await withDb('users', (db) => withTransaction(db, async (tx) => {
        const user = await createUserAccount(tx, { username: name, password, email: options.email ?? null });
        if (options.superuser) await setSuperuser(tx, user.id, true);
        process.stdout.write(`created user ${user.username}${options.superuser ? ' (superuser)' : ''}\n`);
      }));
    });

  const orgs = program.command('orgs').description('manage organizations');
  orgs
    .command('create')
    .description('create an organization owned by an existing user')
    .argument('<name>', 'organization name')
    .requiredOption('--owner <user>', 'the user who owns it')
    .option('--email <email>', 'email address')
    .action(async (name: string, options: { owner: string; email?: string }) => {
      await withDb('orgs', (db) => withTransaction(db, async (tx) => {
        const org = await createOrganizationAccount(tx, { name, owner: options.owner, email: options.email ?? null });
        process.stdout.write(`created organization ${org.username} owned by ${options.owner}\n`);
      }));
    });
}
