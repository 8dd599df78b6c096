// A separate process that appends to a Delta table (tests/delta/concurrency.test.ts):
//   node append-worker.mjs <table> <writer> <appends> [killAt]
// Each append is 10 rows (writer, seq, n) in one commit. With killAt = K, the
// process SIGKILLs itself at its K-th storage call: before it, after it, or
// (for a commit's putIfAbsent) after the temporary file is written and before
// it is linked to the version name, which is a crash in the middle of a commit.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { duckDbSqlSession } from '../../dist/adapters/delta/sql.js';
import { DeltaTable, LocalStorage } from '../../dist/adapters/delta/index.js';

const [tableDir, writer, appends, killAtArg] = process.argv.slice(2);
const killAt = killAtArg === undefined ? undefined : Number(killAtArg);
let calls = 0;

function die() {
  process.kill(process.pid, 'SIGKILL');
}

class CrashingStorage extends LocalStorage {
  async step(kind, fn) {
    calls++;
    if (calls === killAt && kind !== 'mid') {
      if (calls % 2 === 0) die();
      const result = await fn();
      die();
      return result;
    }
    return fn();
  }
  list(...a) { return this.step('list', () => super.list(...a)); }
  read(...a) { return this.step('read', () => super.read(...a)); }
  stat(...a) { return this.step('stat', () => super.stat(...a)); }
  write(...a) { return this.step('write', () => super.write(...a)); }
  delete(...a) { return this.step('delete', () => super.delete(...a)); }
  prepareDir(...a) { return this.step('prepareDir', () => super.prepareDir(...a)); }
  putIfAbsent(file, data) {
    if (calls + 1 === killAt && killAt % 3 === 0) {
      // The commit's temporary file is complete but not yet linked to its version.
      const target = this.locate(file);
      writeFileSync(path.join(path.dirname(target), `.${path.basename(target)}.crash.tmp`), data);
      die();
    }
    return this.step('putIfAbsent', () => super.putIfAbsent(file, data));
  }
}

const instance = await DuckDBInstance.create(':memory:');
const session = duckDbSqlSession(await instance.connect());
const storage = killAt === undefined ? new LocalStorage(tableDir) : new CrashingStorage(tableDir);
const table = new DeltaTable(storage, session);
for (let seq = 0; seq < Number(appends); seq++) {
  await table.write({ selectSql: `select '${writer}' as writer, ${seq} as seq, range as n from range(10)`, mode: 'append', writer });
}
process.stdout.write(`${writer} done after ${calls} storage calls\n`);
