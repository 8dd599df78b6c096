// A separate process that appends rows to a Delta table once, as a blind
// append (it reads nothing of the table), the way a loader or another
// engine's INSERT does (tests/e2e/delta-conflicts.test.ts):
//   node append-rows.mjs <table> <select sql> <writer>
import { DuckDBInstance } from '@duckdb/node-api';
import { duckDbSqlSession } from '../../dist/adapters/delta/sql.js';
import { DeltaTable, LocalStorage } from '../../dist/adapters/delta/index.js';

const [tableDir, selectSql, writer] = process.argv.slice(2);
const instance = await DuckDBInstance.create(':memory:');
const session = duckDbSqlSession(await instance.connect());
const written = await new DeltaTable(new LocalStorage(tableDir), session).write({ selectSql, mode: 'append', writer });
process.stdout.write(`${writer} appended at version ${written.commit.version}\n`);
