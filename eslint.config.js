// Lint: the recommended JS and TypeScript rules, plus the architecture's import arrows
// (shared and queues never import workers or the front end; workers never import each other).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/**', 'data/**', 'dist/**', 'coverage/**'] },
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
    rules: { 'no-restricted-imports': ['error', { patterns: ['**/workers/**', '**/registry/**', '**/bin/**'] }] },
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
