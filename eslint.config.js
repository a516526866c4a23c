import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'data/', '.prof/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      // The service logs through pino only.
      'no-console': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // The core is pure: it speaks errnos through narrow ports and knows nothing of HTTP, SQLite or
    // Node's I/O (http -> core <- store).
    files: ['src/core/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['fastify', 'fastify-*', '@fastify/*'], message: 'the core knows nothing of HTTP' },
            { group: ['better-sqlite3'], message: 'the core talks to persistence through core/ports.ts' },
            { group: ['node:*'], message: 'the core does no I/O: take what you need through a port' },
            { group: ['**/http/**', '../http', '../../http'], message: 'http depends on the core, not the other way' },
            { group: ['**/store/**', '../store', '../../store'], message: 'store depends on the core, not the other way' },
            { group: ['pino', 'zod'], message: 'the core is plain TypeScript' },
          ],
        },
      ],
    },
  },
  {
    // ioasctl is a client of the API: besides its own modules it may use the topology page's
    // browser modules (src/http/ui/*.js, which import nothing), never the server's.
    files: ['src/cli/**'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ regex: '^\\.\\./(?!http/ui/[a-z-]+\\.js$)', message: 'the CLI is a client: only its own modules and the page\'s browser modules (http/ui/*.js)' }] },
      ],
    },
  },
  {
    // The topology page's modules run in the browser as they are (and in Node, which has the same fetch and streams).
    files: ['src/http/ui/**/*.js'],
    languageOptions: { globals: { ...globals.browser } },
  },
  {
    files: ['scripts/**', 'bench/**'],
    rules: { 'no-console': 'off' },
  },
);
