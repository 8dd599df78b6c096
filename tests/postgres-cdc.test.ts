// test_decoding's text as CDC loaders parse it (core/extract/postgres-cdc.ts):
// every value form the plugin prints, read back from the real plugin on the
// local Postgres (a slot on a database of this file's own, dropped after), so
// the parser is checked against what the server writes, not against strings
// written by hand. Also: LSNs compare as numbers, and default slot names are
// valid and stable.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type pg from 'pg';
import { defaultSlotName, lsnValue, parseChange, UNCHANGED } from '../core/extract/postgres-cdc.js';
import { createPgDatabase, dropPgDatabase, pgConnect } from './e2e/helpers.js';

let admin: pg.Client;
let url: string;
let db: pg.Client;
const SLOT = `etl_parse_${process.pid}`;

beforeAll(async () => {
  admin = await pgConnect();
  url = await createPgDatabase(admin, 'etl_cdc_parse');
  db = await pgConnect(url);
  await db.query(`create table "Odd ""Name""" (id int primary key, "two words" text, arr integer[], bits bit(4), flag boolean, n numeric, f float8, j jsonb, big text)`);
  await db.query(`alter table "Odd ""Name""" alter column big set storage external`);
  await db.query(`select pg_create_logical_replication_slot($1, 'test_decoding')`, [SLOT]);
});

afterAll(async () => {
  await db?.end();
  if (url) await dropPgDatabase(admin, url);
  await admin?.end();
});

async function changes(): Promise<string[]> {
  const r = await db.query(`select data from pg_logical_slot_get_changes($1, null, null, 'skip-empty-xacts', '1') where data like 'table %'`, [SLOT]);
  return r.rows.map((row: { data: string }) => row.data.slice(row.data.indexOf(': ') + 2));
}

describe('parseChange, on what test_decoding prints', () => {
  it('every kind of value: quoted names, arrays, bit strings, booleans, numbers, NULL, quotes and newlines, JSON, unchanged TOAST values', async () => {
    await db.query(`insert into "Odd ""Name""" values (1, e'it''s\\nthe ''end'' ', '{1,2,3}', B'1010', true, -1.50, 'NaN', '{"a": "b c"}', repeat('x', 5000))`);
    await db.query(`update "Odd ""Name""" set flag = null where id = 1`);
    await db.query(`update "Odd ""Name""" set id = 2 where id = 1`);
    await db.query(`delete from "Odd ""Name""" where id = 2`);
    await db.query(`truncate "Odd ""Name"""`);
    const [insert, update, rekey, del, truncate] = (await changes()).map(parseChange);
    const row = { id: '1', 'two words': "it's\nthe 'end' ", arr: '{1,2,3}', bits: '1010', flag: 'true', n: '-1.50', f: 'NaN', j: '{"a": "b c"}', big: 'x'.repeat(5000) };
    expect(insert).toEqual({ kind: 'insert', new: Object.entries(row) });
    expect(update).toEqual({ kind: 'update', old: [], new: Object.entries({ ...row, flag: null, big: UNCHANGED }) });
    expect(rekey).toEqual({ kind: 'update', old: [['id', '1']], new: Object.entries({ ...row, id: '2', flag: null, big: UNCHANGED }) });
    expect(del).toEqual({ kind: 'delete', old: [['id', '2']] });
    expect(truncate).toEqual({ kind: 'truncate' });
  });

  it('REPLICA IDENTITY FULL: updates and deletes carry the whole old row', async () => {
    await db.query(`alter table "Odd ""Name""" replica identity full`);
    await db.query(`insert into "Odd ""Name""" (id, flag) values (5, false)`);
    await db.query(`update "Odd ""Name""" set flag = true where id = 5`);
    await db.query(`delete from "Odd ""Name""" where id = 5`);
    const [, update, del] = (await changes()).map(parseChange);
    expect(update).toMatchObject({ kind: 'update', old: [['id', '5'], ['flag', 'false']] });
    expect(del).toEqual({ kind: 'delete', old: [['id', '5'], ['flag', 'true']] });
  });

  it('refuses text it does not know, naming where', () => {
    expect(() => parseChange('MERGE: id[integer]:1')).toThrow('unexpected test_decoding output');
    expect(() => parseChange("INSERT: id[integer]:'1")).toThrow(/cannot parse test_decoding output at/);
  });
});

describe('positions and slot names', () => {
  it('LSNs compare as 64-bit numbers, not as text', () => {
    expect(lsnValue('0/FFFFFFFF') < lsnValue('1/0')).toBe(true);
    expect(lsnValue('A/1') > lsnValue('9/FFFFFFFF')).toBe(true);
    expect(() => lsnValue('nope')).toThrow('not a Postgres LSN');
  });

  it('a default slot name is a valid slot name, the same for the same target and table, another for another', () => {
    const id = { project: 'shop', target: 'dev', database: 'dev', sourceDatabase: 'crm', schema: 'Crm Data', table: 'x'.repeat(80) };
    const name = defaultSlotName(id);
    expect(name).toMatch(/^[a-z0-9_]{1,63}$/);
    expect(defaultSlotName(id)).toBe(name);
    expect(defaultSlotName({ ...id, target: 'prod' })).not.toBe(name);
    // Slot names are server-wide: the same project reading another database's table gets another slot.
    expect(defaultSlotName({ ...id, sourceDatabase: 'crm_copy' })).not.toBe(name);
  });
});
