// Type-aware linting for src/, test/ and bench/.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/** Commands are the top: nothing else imports them, and the Ink views only through them. */
const TOP = { regex: '(^|/)(commands|tui)/', message: 'only commands import commands/ and tui/' };
const NO_RUNNER = { regex: '^\\.\\./pipeline\\.ts$', message: 'a call stage does not import the pipeline that runs it' };
const layer = (files, ...patterns) => ({
  files,
  ...(files.includes('src/**') ? { ignores: ['src/commands/**', 'src/tui/**'] } : {}),
  rules: { 'no-restricted-imports': ['error', { patterns }] },
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'oclif.manifest.json', '.ci/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        { allowForKnownSafeCalls: [{ from: 'package', package: 'node:test', name: ['describe', 'it', 'test', 'suite', 'before', 'after', 'beforeEach', 'afterEach'] }] },
      ],
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
      // Async methods that satisfy an async interface (the store, the IdP) need no await.
      '@typescript-eslint/require-await': 'off',
    },
  },
  // The layers. A later block's no-restricted-imports replaces an earlier one's for the same
  // file, so each block lists every pattern that holds for its files.
  layer(['src/**'], TOP),
  layer(['src/core/**'], { regex: '^\\.\\./\\.\\./(?!core/)|^\\.\\./(gateway|daemon|cli|store|auth|config|commands|tui|providers|protocol)/', message: 'core is pure: it imports only core' }),
  layer(['src/providers/**'], { regex: '^\\.\\./(?!core/)', message: 'provider codecs import core only' }),
  layer(['src/daemon/**', 'src/cli/**'], TOP, { regex: '^\\.\\./gateway/', message: 'the daemon and the CLI do not import the gateway (shared wire knowledge lives in src/providers)' }),
  // The governed call: pipeline.ts runs the stages in gateway/call/; a stage never imports the
  // runner, and CallState (which every stage takes) imports no stage — so the stages form no cycle.
  layer(['src/gateway/call/**'], TOP, NO_RUNNER),
  layer(['src/gateway/call/call-state.ts', 'src/gateway/call/error-summary.ts'], TOP, NO_RUNNER, { regex: '^\\./(?!error-summary\\.ts$)', message: 'CallState is below the stages: it imports none of them' }),
  {
    files: ['test/**', 'bench/**', 'examples/**'],
    rules: {
      'no-console': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: {
      ...tseslint.configs.disableTypeChecked.languageOptions,
      globals: { process: 'readonly', console: 'readonly', fetch: 'readonly', URL: 'readonly', URLSearchParams: 'readonly', setTimeout: 'readonly' },
    },
  },
);
