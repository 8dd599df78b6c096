// Malformed seed files are refused before they are loaded, on DuckDB and on
// Postgres alike: a record with too many or too few fields, a quoted value
// never closed, bytes that are not UTF-8. The run fails (exit 1) naming the
// seed's path and the line where the first bad record starts, and the table
// loaded before is left as it was. A UTF-8 BOM and CRLF line ends load.

import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { PG_URL, dbPathOf, pgTestSchemas, runCli, withDb, writeProject } from './helpers.js';

const GOOD = 'id,name\n1,alpha\n2,beta\n';

const BAD: Array<{ name: string; bytes: Buffer; line: number; says: string }> = [
  { name: 'a record with too many fields', bytes: Buffer.from('id,name\n1,a\n2,b,extra\n3,c\n'), line: 3, says: '3 ' },
  { name: 'a record with too few fields', bytes: Buffer.from('id,name\n1,a\n2,b\n3\n'), line: 4, says: '1 ' },
  { name: 'a quoted value never closed', bytes: Buffer.from('id,name\n1,a\n2,"b\n3,c\n'), line: 3, says: 'never closed' },
  { name: 'bytes that are not UTF-8', bytes: Buffer.concat([Buffer.from('id,name\n1,a\n2,caf'), Buffer.from([0xe9]), Buffer.from('\n')]), line: 3, says: 'UTF-8' },
  // The line is the file's: the quoted value before it spans two.
  { name: 'a ragged record after a quoted line break', bytes: Buffer.from('id,name\n1,"two\nlines"\n2,b,extra\n'), line: 4, says: '3 ' },
];

interface Engine {
  name: string;
  etlYml(schema: string): string;
  rows(dir: string, schema: string): Promise<Array<[string, string]>>;
}

const pgTest = pgTestSchemas();

const ENGINES: Engine[] = [
  {
    name: 'duckdb',
    etlYml: () => 'name: seeds\nversion: 1\ntargets:\n  dev: { type: duckdb, path: target/dev.duckdb, schema: main }\n',
    rows: (dir) =>
      withDb(dbPathOf(dir), async (db) => (await db.rows('select id::varchar as id, name from main.s order by id')).map((r) => [String(r.id), String(r.name)])),
  },
  {
    name: 'postgres',
    etlYml: (schema) => `name: seeds\nversion: 1\ntargets:\n  pg: { type: postgres, url: "${PG_URL}", schema: ${schema}, threads: 2 }\n`,
    rows: async (_dir, schema) => (await pgTest.admin.query(`select id::text as id, name from "${schema}".s order by id`)).rows.map((r) => [r.id as string, r.name as string]),
  },
];

describe.each(ENGINES)('seed files on $name', (engine) => {
  it.each(BAD)('$name: exit 1 at the seed file and line, previous table intact', async (bad) => {
    const schema = pgTest.schema();
    const dir = writeProject({ 'etl.yml': engine.etlYml(schema), 'seeds/s.csv': GOOD });
    const first = await runCli(['seed'], { cwd: dir });
    expect(first.code, first.output).toBe(0);
    writeFileSync(path.join(dir, 'seeds/s.csv'), bad.bytes);
    const r = await runCli(['seed'], { cwd: dir });
    expect(r.code, r.output).toBe(1);
    expect(r.output).toContain(`seeds/s.csv:${bad.line}: `);
    expect(r.output).toContain(bad.says);
    expect(await engine.rows(dir, schema)).toEqual([
      ['1', 'alpha'],
      ['2', 'beta'],
    ]);
  });

  it('a UTF-8 BOM and CRLF line ends load as the plain file would', async () => {
    const schema = pgTest.schema();
    const dir = writeProject({ 'etl.yml': engine.etlYml(schema), 'seeds/s.csv': '\ufeffid,name\r\n1,"a, ""quoted"" value"\r\n2,b\r\n' });
    const r = await runCli(['seed'], { cwd: dir });
    expect(r.code, r.output).toBe(0);
    expect(await engine.rows(dir, schema)).toEqual([
      ['1', 'a, "quoted" value'],
      ['2', 'b'],
    ]);
  });
});
