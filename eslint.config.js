// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/.data/**', '**/dist/**', 'packages/api/types/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    // core is transport-free: no tRPC, no CLI libraries.
    files: ['packages/core/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['@trpc/*', 'commander', '@inquirer/*', '@concert/api', '@concert/cli'], message: 'packages/core knows nothing of transports or the CLI.' },
          ],
        },
      ],
    },
  },
  {
    // The CLI sees the server only through the AppRouter type.
    files: ['packages/cli/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [{ name: '@concert/api', message: 'Import only the AppRouter type from @concert/api.', allowTypeImports: true }],
          patterns: [{ group: ['@concert/api/*'], message: 'Import only the AppRouter type from @concert/api.', allowTypeImports: true }],
        },
      ],
    },
  },
  {
    // A router() carries the server's context type into AppRouter and so into every client's
    // package (see packages/api/src/routers/index.ts): sub-routers are plain records.
    files: ['packages/api/src/routers/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { paths: [{ name: '../trpc.ts', importNames: ['router'], message: 'Write a sub-router as a plain record: { … } satisfies TRPCRouterRecord.' }] },
      ],
    },
  },
);
