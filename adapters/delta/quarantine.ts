// Quarantine on Delta. The rows a model's row-level tests reject go to a Delta
// table of their own (<model>__quarantine), and Delta commits one table at a
// time, so the pair cannot be one commit. It is rolled forward instead, so
// that no reader of the files (Spark, delta-rs, etl) ever sees quarantined
// rows of a run whose model commit did not happen:
//  1. the quarantine rows are written as Parquet files in the quarantine
//     table's folder, referenced by no commit (stageQuarantine);
//  2. the model's commit records them in its metadata domain `etl.quarantine`
//     (the files' add actions, their schema and a sequence number), in the
//     same commit as its data: both or neither;
//  3. the quarantine commit follows (settleQuarantine): those adds with a txn
//     action whose appId names the model and whose version is the sequence
//     number, so committing them again is a no-op (idempotent by appId).
// A run that dies between 2 and 3 leaves the model's commit with its record;
// the next etl run on the lake (opening it, vacuum, or the next write of the
// model) commits the quarantine rows then. Until then the quarantine table
// is behind its model (it lacks that run's rows), never ahead. A model
// commit that fails leaves only unreferenced files, which vacuum removes.
// It assumes one writer per model at a time (as a run's schema lock gives the
// SQL engines); two would conflict on the model's `etl.quarantine` domain.

import type { Relation } from '../adapter.js';
import type { AddFile } from './actions.js';
import { ConcurrentModificationError } from './errors.js';
import type { Lake } from './lake.js';
import type { StructType } from './schema.js';
import type { Snapshot } from './snapshot.js';
import type { SqlSession } from './sql.js';
import type { DomainValue } from './table.js';

export const QUARANTINE_DOMAIN = 'etl.quarantine';
/** The commitInfo field marking a quarantine commit with the model ("schema.name") it goes with. */
export const QUARANTINE_OF = 'etlQuarantineOf';

/** What a model's commit records in its etl.quarantine domain. */
export interface QuarantineRecord {
  /** The quarantine table, "schema.name". */
  table: string;
  /** The model's quarantine changes so far: the txn version of the quarantine commit of these rows. */
  seq: number;
  /** The staged files' schema (the quarantine table's after the append). */
  schema: StructType;
  /** The staged files, committed to the quarantine table by settleQuarantine. */
  adds: AddFile[];
}

const nameOf = (r: Relation) => `${r.schema}.${r.name}`;

function relationNamed(name: string): Relation {
  const dot = name.indexOf('.');
  return { schema: name.slice(0, dot), name: name.slice(dot + 1) };
}

/** The txn appId of a model's quarantine commits. */
export function quarantineAppId(model: Relation): string {
  return `etl.quarantine:${nameOf(model)}`;
}

/** The model's quarantine record, if its commits recorded one. */
export function recordOf(model: Snapshot | undefined): QuarantineRecord | undefined {
  const configuration = model?.domains.get(QUARANTINE_DOMAIN)?.configuration;
  if (!configuration) return undefined;
  const record = JSON.parse(configuration) as Partial<QuarantineRecord>;
  // A record without staged adds is of an earlier etl (quarantine committed first): nothing to roll forward.
  return typeof record.seq === 'number' && Array.isArray(record.adds) && record.schema ? (record as QuarantineRecord) : undefined;
}

/**
 * Writes the rows of `selectSql` as files of the quarantine table `into`,
 * committed by no one yet; returns the etl.quarantine domain the model's
 * commit carries (none when no row moves into an existing table). The
 * model's earlier record is settled first (its seq is then in the quarantine
 * table's txn), so no record is ever overwritten before its rows are in.
 */
export async function stageQuarantine(lake: Lake, session: SqlSession, model: Relation, modelSnapshot: Snapshot | undefined, into: Relation, selectSql: string): Promise<DomainValue | undefined> {
  await settleQuarantine(lake, session, model, modelSnapshot);
  const table = lake.table(into, session);
  const current = await latestIfTable(lake, table, into, session);
  const staged = await table.stageAppend(selectSql, current);
  // The first run makes the table even without rows (readers of it find it); later ones add files or nothing.
  if (staged.adds.length === 0 && current) return undefined;
  const done = current?.txns.get(quarantineAppId(model))?.version ?? 0;
  const record: QuarantineRecord = { table: nameOf(into), seq: Math.max(recordOf(modelSnapshot)?.seq ?? 0, done) + 1, schema: staged.schema, adds: staged.adds };
  return { domain: QUARANTINE_DOMAIN, configuration: JSON.stringify(record) };
}

/**
 * Commits the quarantine rows the model's latest commit recorded, unless the
 * quarantine table's txn for the model already has them. Returns the
 * quarantine table's version when it committed.
 */
export async function settleQuarantine(lake: Lake, session: SqlSession, model: Relation, modelSnapshot: Snapshot | undefined): Promise<number | undefined> {
  const record = recordOf(modelSnapshot);
  if (!record) return undefined;
  const into = relationNamed(record.table);
  const table = lake.table(into, session);
  const appId = quarantineAppId(model);
  const current = await latestIfTable(lake, table, into, session);
  if ((current?.txns.get(appId)?.version ?? 0) >= record.seq) return undefined;
  try {
    const written = await table.write({
      mode: 'append',
      mergeSchema: true,
      schema: record.schema,
      stagedAdds: record.adds,
      current,
      txn: { appId, version: record.seq },
      commitInfo: { [QUARANTINE_OF]: nameOf(model), etlQuarantineSeq: record.seq },
    });
    await lake.refresh(into, session);
    return written.commit?.version;
  } catch (err) {
    // Another etl process rolled the same record forward first (its txn has this appId): done.
    if (err instanceof ConcurrentModificationError && ((await lake.latest(into, session)).txns.get(appId)?.version ?? 0) >= record.seq) return undefined;
    throw err;
  }
}

/**
 * Settles every model of the lake whose latest commit recorded quarantine
 * rows not committed yet (a run died between the two commits). With
 * `onError`, a model that cannot be settled is reported and the others go on
 * (its next write settles it or fails on it); without, the error is thrown.
 */
export async function settleLake(lake: Lake, session: SqlSession, onError?: (model: Relation, err: Error) => void): Promise<number> {
  let settled = 0;
  for (const model of lake.relations()) {
    try {
      const snapshot = await lake.snapshot(model, session);
      if ((await settleQuarantine(lake, session, model, snapshot)) !== undefined) settled++;
    } catch (err) {
      if (!onError) throw err;
      onError(model, err as Error);
    }
  }
  return settled;
}

/** The quarantine table's latest snapshot, or none where no table is there yet. */
async function latestIfTable(lake: Lake, table: ReturnType<Lake['table']>, into: Relation, session: SqlSession): Promise<Snapshot | undefined> {
  return lake.isTable(into) || (await table.exists()) ? lake.latest(into, session) : undefined;
}
