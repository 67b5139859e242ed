/**
 * Jest runs the TypeScript sources as ESM through ts-jest (transpile only: `npm run typecheck` checks
 * types once). DynamoDB Local starts once per run and the CDK app is synthesized once (global setup).
 * What the code under test logs goes to the run's log folder, not between the results (test/support/global-*.mjs).
 */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  globalSetup: '<rootDir>/test/support/global-setup.mjs',
  globalTeardown: '<rootDir>/test/support/global-teardown.mjs',
  // The functions' logs go to a file per test file, shown when one of its tests fails: the output is the results.
  setupFilesAfterEnv: ['<rootDir>/test/support/global-test-logs.mjs'],
  reporters: ['default', '<rootDir>/test/support/global-log-reporter.mjs'],
  testTimeout: 30_000,
  maxWorkers: process.env.CI ? 2 : '50%',
};
