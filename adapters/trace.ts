// ETL_TRACE_SQL=1 prints every statement an adapter or a loader's source runs,
// with its time and when it ended (ms since the process started), to stderr.
// Statements only: values are bound, so no data or secret is printed.
//
// ETL_PAUSE_AFTER_SQL=<regex> is for crash tests: once the first statement
// matching it has completed, the process says so on stderr and stops where
// it is (its thread blocked, nothing more sent to the engine), so that a
// test can kill it at exactly that point instead of after a guessed delay.
// The Delta target's commits are points too: `delta commit <operation>
// v<version> <table folder>` once the version's file is in the log, and so
// are a CDC loader's steps: `cdc changes staged <slot>`, `cdc committed <slot>`.
// With ETL_RESUME_FILE=<path> as well, a paused process goes on once that file
// exists (so a test can make another writer commit in between).

import { existsSync, writeSync } from 'node:fs';

const TRACE = process.env.ETL_TRACE_SQL === '1';
const PAUSE = process.env.ETL_PAUSE_AFTER_SQL ? new RegExp(process.env.ETL_PAUSE_AFTER_SQL, 'i') : undefined;
const RESUME_FILE = process.env.ETL_RESUME_FILE;

const oneLine = (sql: string) => sql.replace(/\s+/g, ' ').trim().slice(0, 160);

export function traceSql(sql: string, startedAt: number): void {
  if (TRACE) {
    const now = performance.now();
    process.stderr.write(`[sql ${(now - startedAt).toFixed(1)} ms, at ${now.toFixed(0)} ms] ${oneLine(sql)}\n`);
  }
  pausePoint(oneLine(sql));
}

/** Stops the process here (see the header) when ETL_PAUSE_AFTER_SQL matches `label`. */
export function pausePoint(label: string): void {
  if (PAUSE?.test(label)) {
    writeSync(2, `[paused after sql] ${label}\n`);
    const cell = new Int32Array(new SharedArrayBuffer(4));
    if (!RESUME_FILE) Atomics.wait(cell, 0, 0);
    else while (!existsSync(RESUME_FILE)) Atomics.wait(cell, 0, 0, 20);
  }
}
