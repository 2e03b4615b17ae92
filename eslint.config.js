// ESLint (flat config): typescript-eslint's recommended type-checked rules on every TypeScript file, over
// one program that holds them all (tsconfig.lint.json). Tests, the testkit and the bench drive the code
// from outside, often through untyped JSON and YAML, so some rules are relaxed there.
import { defineConfig, globalIgnores } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores([
    '**/node_modules/',
    '**/dist/',
    'coverage/',
    'bench/results/',
    // the seed's WebSocket client, byte for byte as the seed prints it
    'testkit/seed-client.js',
    // StrykerJS's own configuration (plain JavaScript outside the TypeScript program)
    'stryker.config.mjs',
  ]),
  {
    files: ['**/*.{ts,mts,js,mjs}'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { project: './tsconfig.lint.json', tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // An async method that implements a Promise interface without awaiting (the in-memory cache and stores)
      // is right as it is: `async` turns a throw into a rejection, which is what the interface's callers handle.
      '@typescript-eslint/require-await': 'off',
      // `_name` marks a deliberately unused binding (a destructured-away field, a required parameter).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // express and ws take callbacks that may return a promise; their errors are handled inside.
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      // `${n}` of a number or boolean is fine; objects and nullish values in templates are the bugs.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
    },
  },
  {
    // The web page's browser modules: plain JavaScript outside the TypeScript program (no build step), checked
    // with the rules that need no types.
    files: ['services/gateway/public/**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { sourceType: 'module', parserOptions: { project: false } },
  },
  {
    // Tests, test helpers, the testkit and the bench: parsed JSON/YAML and test doubles are `any` by nature.
    files: ['**/*.test.ts', 'test/**', 'testkit/**', 'bench/**', '**/testing/**', 'scripts/**', '*.config.{ts,js}'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
      // `expect(obj.method)` and spies pass methods around on purpose.
      '@typescript-eslint/unbound-method': 'off',
      // ws hands messages over as Buffers (their toString is the text); test helpers stringify what they read.
      '@typescript-eslint/no-base-to-string': 'off',
      // A browser test rethrows what page.evaluate returned, which is a serialised value, not an Error.
      '@typescript-eslint/only-throw-error': 'off',
    },
  },
);
