// Lint: the recommended JS and TypeScript rules, plus the architecture's import arrows
// (shared and queues never import workers or the front end; workers never import each other).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** shared/ and queues/ never import the processes built on them: workers/, registry/, bin/. */
const LOWER_NEVER_IMPORTS_UPPER = {
  group: ['**/workers/**', '**/registry/**', '**/bin/**'],
  message: 'shared/ and queues/ sit below workers/, registry/ and bin/: never import them',
};

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'dist/**', 'dist.next/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', URL: 'readonly', fetch: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['shared/**/*.ts', 'queues/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [LOWER_NEVER_IMPORTS_UPPER] }] },
  },
  {
    // The layers inside shared/: metrics and config at the bottom, db and storage above them, runtime
    // (workers, outbox relay, health, shutdown) on top. db and storage never reach up into runtime.
    files: ['shared/db/**/*.ts', 'shared/storage/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          LOWER_NEVER_IMPORTS_UPPER,
          { group: ['**/runtime/**', '**/runtime/*.ts'], message: 'shared/db and shared/storage sit below shared/runtime: never import it' },
        ],
      }],
    },
  },
  {
    files: ['shared/metrics/**/*.ts', 'shared/config/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          LOWER_NEVER_IMPORTS_UPPER,
          { group: ['**/runtime/**', '**/db/**', '**/storage/**'], message: 'shared/metrics and shared/config are the bottom layer: they import nothing of the project above them' },
        ],
      }],
    },
  },
  {
    // Every Postgres connection comes from shared/db/pool.ts (createPool, createClient), which gives
    // it an 'error' listener: a bare pg.Client or pg.Pool crashes the process when the server goes.
    files: ['shared/**/*.ts', 'registry/**/*.ts', 'workers/**/*.ts', 'bin/**/*.ts', 'queues/**/*.ts'],
    ignores: ['shared/db/pool.ts', '**/*.test.ts', '**/test-support/**'],
    rules: {
      'no-restricted-syntax': ['error', {
        selector: "NewExpression[callee.object.name='pg'][callee.property.name=/^(Client|Pool)$/], NewExpression[callee.name=/^(Client|Pool)$/]",
        message: 'connect through createPool/createClient (shared/db/pool.ts): they attach the error listener that keeps a lost connection from crashing the process',
      }],
    },
  },
  {
    // A worker folder imports shared/, queues/ and workers/services.ts, never another worker's folder.
    files: ['workers/*/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [
          { group: ['../*/**', '!../../**', '!../services.ts', '!../index.ts'], message: 'worker folders never import each other' },
          { group: ['**/registry/**'], message: 'workers do not import the front end' },
        ],
      }],
    },
  },
);
