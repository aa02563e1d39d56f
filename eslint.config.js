// ESLint flat config: typescript-eslint's type-checked recommended rules for the TypeScript sources, plus a few
// house rules. Formatting is Prettier's business (.prettierrc.json), never ESLint's.
import eslint from '@eslint/js';
import tseslint from 'typescript-eslint';

// Reasons are vocabulary (REASON in src/crds/types.ts): one spelling, never a string written at the throw site.
const REASON_AT_THROW_SITE = {
  selector: 'NewExpression[callee.name=/^(Wait|Stall)Error$/] > :matches(Literal, TemplateLiteral).arguments:first-child',
  message: 'Use a REASON constant (src/crds/types.ts) as the reason of a WaitError/StallError.',
};

export default tseslint.config(
  {
    ignores: ['node_modules/**', 'dist/**', 'coverage/**', 'deploy/**', '.cache/**', 'tmp/**'],
  },
  eslint.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Deliberately fire-and-forget promises are written `void promise`; anything else must be awaited or handled.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      // verbatimModuleSyntax keeps imports as written, so type-only imports must say so (`import type` / `type` specifiers).
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'inline-type-imports' }],
      // `x != null` (null or undefined) is the one loose comparison worth keeping.
      eqeqeq: ['error', 'always', { null: 'ignore' }],
      // The decoders and config readers turn untyped wire/YAML values into strings on purpose (`String(o['gate'] ?? '')`);
      // every finding of this rule was such a deliberate String(unknown), so it only adds noise.
      '@typescript-eslint/no-base-to-string': 'off',
      // typescript-eslint's defaults, plus `never` (messages for values a type guard has just rejected) and Node's
      // URLSearchParams (lib is es2023, so the default `from: 'lib'` entry does not match @types/node's global).
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        {
          allowAny: true,
          allowBoolean: true,
          allowNullish: true,
          allowNumber: true,
          allowRegExp: true,
          allowNever: true,
          allow: [
            { name: ['Error', 'URL', 'URLSearchParams'], from: 'lib' },
            { name: ['URL', 'URLSearchParams'], from: 'package', package: 'url' },
          ],
        },
      ],
    },
  },
  {
    // The operator logs through pino (src/telemetry/logger.ts); a stray console.* would bypass levels and JSON output.
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts'],
    rules: {
      'no-console': 'error',
      // Names are declared before use (functions aside: hoisted helpers below their caller read top-down).
      '@typescript-eslint/no-use-before-define': ['error', { functions: false, classes: true, variables: true, typedefs: false, ignoreTypeReferences: true }],
      'no-restricted-syntax': ['error', REASON_AT_THROW_SITE],
    },
  },
  {
    // Errors are read by kind (KubeError via src/kube/cluster.port.ts, AnchoreError via src/anchore/errors.ts), never by
    // casting to a status code: only the two adapters read raw HTTP and Node errors.
    files: ['src/**/*.ts'],
    ignores: ['src/**/*.test.ts', 'src/kube/**', 'src/anchore/**'],
    rules: {
      'no-restricted-syntax': [
        'error',
        REASON_AT_THROW_SITE,
        {
          selector: 'TSAsExpression > TSTypeLiteral > TSPropertySignature > Identifier.key[name=/^(status|statusCode|code)$/]',
          message: 'Read errors by kind (isKubeError from src/kube/cluster.port.ts, AnchoreError.kind), not by casting to status/statusCode/code.',
        },
      ],
    },
  },
  {
    // Tests read untyped JSON bodies (`any`), fake async ports with `async` methods that never await, and pass methods
    // to expect(); the type-safety rules below add noise there, not safety.
    files: ['**/*.test.ts', 'test/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/unbound-method': 'off',
    },
  },
  {
    // Plain JavaScript configs (ESLint, jest, dependency-cruiser, the jest reporter): not in the TS project.
    files: ['**/*.js', '**/*.cjs', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { ...tseslint.configs.disableTypeChecked.languageOptions, globals: { process: 'readonly', console: 'readonly' } },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
