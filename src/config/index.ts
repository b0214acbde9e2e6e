// Proxy configuration: public surface of src/config.
export { parseConfig, loadConfig, checkConfig, runCheck, formatIssue, type LoadOptions, type ParseResult, type CheckResult } from './load.js';
export { parseDuration, formatPath } from './checker.js';
export type * from './types.js';
export { createTlsContexts, configPolicies, configL4DenyEntries } from './runtime.js';
