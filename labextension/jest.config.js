/** Jest runs the pure state logic (src/model.ts) in Node, without a DOM. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/src'],
  testRegex: 'src/__tests__/.*\\.spec\\.ts$',
  transform: {
    '^.+\\.tsx?$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }]
  },
  collectCoverageFrom: ['src/model.ts'],
  coverageReporters: ['text-summary'],
  reporters: ['default']
};
