// The library entry (`import { compile, build, test, query } from 'etl'`):
// the same functions the CLI calls, their option and result types, and the
// errors they throw. Nothing here prints or reads argv.

export { build, compile, list, retry, run, seed, show, snapshot, sourceFreshness, stateShow, test } from './api.js';
export type { CompileOptions, CompileResult, FreshnessSummary, ProjectOptions, RunCommandOptions, RunSummary, SelectOptions } from './api.js';
export { query, queryArrow, toArrowTable, type QueryOptions } from './query.js';
export type { QueryResult } from '../adapters/adapter.js';
export type { Manifest, ManifestNode, ResourceType } from './compiler/manifest.js';
export type { NodeResult, RunEvent } from './runner/events.js';
export { ProjectError, RunError, type Diagnostic } from './errors.js';
export { backoffDelay, backoffPolicy, CircuitBreaker, DEFAULT_BACKOFF, realSleeper, RetriesExhausted, withRetry } from './runner/retry.js';
export { parseDurationMs } from './project/duration.js';
export type { AttemptRecord, BackoffPolicy, RetryBackoffConfig, RetryOptions, Sleeper } from './runner/retry.js';
