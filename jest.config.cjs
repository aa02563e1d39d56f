// Native ESM jest with swc transforms (run with --experimental-vm-modules by scripts/test.ts). Source imports carry `.ts`
// extensions (Node 24 runs them directly); swc keeps them and jest resolves them as files.
/** @type {import('jest').Config} */
const swc = ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2023' }, module: { type: 'es6' } }];
module.exports = {
  testEnvironment: 'node',
  extensionsToTreatAsEsm: ['.ts'],
  transform: { '^.+\\.ts$': swc },
  reporters: ['default', '<rootDir>/scripts/jest-summary-reporter.cjs'],
  // Must be top-level: jest ignores testTimeout inside a `projects` entry. Unit tests finish far below it.
  testTimeout: 120000,
  projects: [
    {
      displayName: 'unit',
      testEnvironment: 'node',
      extensionsToTreatAsEsm: ['.ts'],
      transform: { '^.+\\.ts$': swc },
      testMatch: ['<rootDir>/src/**/*.test.ts', '<rootDir>/scripts/**/*.test.ts', '<rootDir>/test/anchore-sim/**/*.test.ts', '<rootDir>/test/cluster/**/*.test.ts', '<rootDir>/bench/**/*.test.ts'],
    },
    {
      displayName: 'integration',
      testEnvironment: 'node',
      extensionsToTreatAsEsm: ['.ts'],
      transform: { '^.+\\.ts$': swc },
      // The e2e suites (the Helm chart driven as a user would) share the cluster set-up of the integration suites.
      testMatch: ['<rootDir>/test/integration/**/*.test.ts', '<rootDir>/test/e2e/**/*.test.ts'],
      globalSetup: '<rootDir>/test/support/global-setup.ts',
      globalTeardown: '<rootDir>/test/support/global-teardown.ts',
    },
  ],
};
