// A separate process that merges into a Delta table (tests/delta/concurrency.test.ts):
//   node merge-worker.mjs <table> <writer> <merges> <key,key,...>
// Each merge reads the table's latest snapshot, adds 1 to the counter `n` of
// the given keys (read-modify-write, as an incremental model reading {{this}}),
// and commits the copy-on-write rewrite against the snapshot it read. A
// conflict (another writer committed a change this one read) is retried from
// a fresh snapshot, as a node with `retries:` is. Prints the merges and conflicts.
import { DuckDBInstance } from '@duckdb/node-api';
import { duckDbSqlSession } from '../../dist/adapters/delta/sql.js';
import { ConcurrentModificationError, DeltaTable, LocalStorage, scanSnapshot } from '../../dist/adapters/delta/index.js';
import { planRewrite } from '../../dist/adapters/delta/changes.js';

const [tableDir, writer, merges, keys] = process.argv.slice(2);
const instance = await DuckDBInstance.create(':memory:');
const session = duckDbSqlSession(await instance.connect());
const storage = new LocalStorage(tableDir);
const table = new DeltaTable(storage, session);
let conflicts = 0;
for (let done = 0; done < Number(merges); ) {
  const snapshot = await table.snapshot();
  const scan = await scanSnapshot(storage, session, snapshot);
  await session.execute(`create or replace temp table etl_new as select k, n + 1 as n from (${scan.sql}) as t where k in (${keys})`);
  const change = { strategy: 'merge', target: { schema: 'main', name: 't' }, staged: { schema: 'temp', name: 'etl_new' }, columns: ['k', 'n'], uniqueKey: ['k'], columnChanges: [], state: [] };
  const plan = await planRewrite(storage, session, snapshot, change, 'temp.etl_new');
  try {
    await table.write({ readSnapshot: snapshot, selectSql: plan.selectSql, mode: 'rewrite', removeFiles: plan.removeFiles, operation: 'MERGE', readFiles: plan.readFiles, readPredicate: plan.readPredicate, writer });
    done++;
  } catch (err) {
    if (!(err instanceof ConcurrentModificationError)) throw err;
    conflicts++;
  }
}
process.stdout.write(`${writer} merged ${merges} times with ${conflicts} conflicts\n`);
