// ETL_TRACE_SQL=1 prints every statement an adapter runs, with its time, to
// stderr. Statements only: values are bound, so no data or secret is printed.

const TRACE = process.env.ETL_TRACE_SQL === '1';

export function traceSql(sql: string, startedAt: number): void {
  if (TRACE) process.stderr.write(`[sql ${(performance.now() - startedAt).toFixed(1)} ms] ${sql.replace(/\s+/g, ' ').slice(0, 160)}\n`);
}
