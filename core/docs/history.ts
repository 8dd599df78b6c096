// Reads the run history the target keeps (etl_meta.runs and node_runs, see
// core/state/state.ts) for the docs site: the last runs of the project and
// of each node. Read only; a target not built yet, locked by a running build,
// or unreachable gives no history and a warning, never a failed generate.

import type { ProjectScan } from '../project/load.js';
import { META_SCHEMA } from '../state/state.js';
import type { RunHistory } from './split.js';

const RUNS = 20;
const RUNS_PER_NODE = 10;

function text(v: unknown): string | null {
  return v === null || v === undefined ? null : String(v);
}

export async function readRunHistory(project: ProjectScan): Promise<{ history?: RunHistory; warning?: string }> {
  const { createAdapter } = await import('../../adapters/index.js');
  let adapter;
  try {
    adapter = await createAdapter(project.target, project.root, { readOnly: true });
    await adapter.open();
  } catch (err) {
    return { warning: `no run history: ${(err as Error).message.split('\n')[0]}` };
  }
  const t = (name: string) => `"${META_SCHEMA}"."${name}"`;
  try {
    return await adapter.withSession(async (session) => {
      const exists = await session.query(`select count(*) from information_schema.tables where table_schema = $1 and table_name = 'node_runs'`, [META_SCHEMA]);
      if (Number(exists.rows[0]?.[0] ?? 0) === 0) return {};
      const runs = await session.query(
        `select run_id, command, status, cast(started_at as varchar), cast(finished_at as varchar) from ${t('runs')} order by started_at desc limit ${RUNS}`,
      );
      const nodeRuns = await session.query(
        `select run_id, unique_id, status, cast(started_at as varchar), cast(finished_at as varchar), rows_affected, message from (` +
          `select *, row_number() over (partition by unique_id order by started_at desc) as n from ${t('node_runs')}) as r where n <= ${RUNS_PER_NODE} order by unique_id, started_at desc`,
      );
      return {
        history: {
          runs: runs.rows.map((r) => ({ run_id: String(r[0]), command: String(r[1] ?? ''), status: String(r[2] ?? ''), started_at: text(r[3]), finished_at: text(r[4]) })),
          node_runs: nodeRuns.rows.map((r) => ({
            run_id: String(r[0]),
            unique_id: String(r[1]),
            status: String(r[2] ?? ''),
            started_at: text(r[3]),
            finished_at: text(r[4]),
            rows_affected: r[5] === null || r[5] === undefined ? null : Number(r[5]),
            message: String(r[6] ?? ''),
          })),
        },
      };
    });
  } catch (err) {
    return { warning: `no run history: ${(err as Error).message.split('\n')[0]}` };
  } finally {
    await adapter.close();
  }
}
