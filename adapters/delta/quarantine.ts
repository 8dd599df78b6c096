// Quarantine on Delta. The rows a model's row-level tests reject go to a Delta
// table of their own (<model>__quarantine), and Delta commits one table at a
// time, so the pair cannot be one commit. It is made recoverable instead:
//  1. the quarantine rows commit first, marked as the model's
//     (commitInfo.etlQuarantineOf = "schema.model", a txn action whose appId
//     is the invocation id);
//  2. the model's commit records, in its metadata domain `etl.quarantine`,
//     the quarantine table's version it goes with;
//  3. a marked quarantine commit after that version belongs to a model commit
//     that never happened (a crash between the two, a failed or retried
//     commit): the next write of the model removes its files, in one commit,
//     before anything else (and a failed model commit removes them at once).
// So the model never publishes without its quarantine rows, and the rows of a
// run are in the quarantine table once if its model commit happened, else not
// after the next write of that model. Until then etl's readers do not see
// them either: the lake reads a quarantine table whose newest commit is
// unpaired as of the version its model pairs with (Lake.published), so no
// reader through etl sees one half of the pair. A reader of the files alone
// (Spark) sees the latest version, unpaired rows included, until that repair.
// It assumes one writer per model at a time (as a run's schema lock gives the
// SQL engines).

import type { Relation } from '../adapter.js';
import type { AddFile, RemoveFile } from './actions.js';
import { commitInfoOf, fileKey } from './actions.js';
import type { Lake } from './lake.js';
import { readCommitsAfter, type Snapshot } from './snapshot.js';
import type { SqlSession } from './sql.js';
import { removeOf, type DomainValue } from './table.js';
import { commit } from './transaction.js';

export const QUARANTINE_DOMAIN = 'etl.quarantine';
/** The commitInfo field marking a quarantine commit with the model ("schema.name") it goes with. */
export const QUARANTINE_OF = 'etlQuarantineOf';

/** What a model's commit records: its quarantine table and that table's version. */
export interface QuarantinePairing {
  table: string;
  version: number;
}

const nameOf = (r: Relation) => `${r.schema}.${r.name}`;

export function pairingOf(target: Snapshot | undefined): QuarantinePairing | undefined {
  const configuration = target?.domains.get(QUARANTINE_DOMAIN)?.configuration;
  return configuration ? (JSON.parse(configuration) as QuarantinePairing) : undefined;
}

export function pairingDomain(quarantine: Relation, version: number): DomainValue {
  return { domain: QUARANTINE_DOMAIN, configuration: JSON.stringify({ table: nameOf(quarantine), version } satisfies QuarantinePairing) };
}

/** The commitInfo and txn of a quarantine commit for `target`. */
export function quarantineCommit(target: Relation, snapshot: Snapshot | undefined, invocationId: string | undefined): { commitInfo: Record<string, unknown>; txn?: { appId: string; version: number } } {
  const txn = invocationId ? { appId: invocationId, version: (snapshot?.txns.get(invocationId)?.version ?? -1) + 1 } : undefined;
  return { commitInfo: { [QUARANTINE_OF]: nameOf(target) }, ...(txn ? { txn } : {}) };
}

/**
 * Removes the rows of quarantine commits made for `target` after the version
 * its latest commit pairs with (see the module header). Returns the
 * quarantine table's version afterwards, or undefined when it has no table.
 */
export async function repairQuarantine(lake: Lake, session: SqlSession, target: Relation, quarantine: Relation, targetSnapshot: Snapshot | undefined): Promise<number | undefined> {
  const table = lake.table(quarantine, session);
  if (!lake.isTable(quarantine) && !(await table.exists())) return undefined;
  const pairing = pairingOf(targetSnapshot);
  const paired = pairing?.table === nameOf(quarantine) ? pairing.version : -1;
  const orphans = (await readCommitsAfter(table.storage, paired)).filter((c) => commitInfoOf(c)?.[QUARANTINE_OF] === nameOf(target));
  const snapshot = await lake.latest(quarantine, session);
  const files: AddFile[] = [];
  for (const c of orphans) for (const a of c.actions) if ('add' in a && a.add && snapshot.files.has(fileKey(a.add))) files.push(snapshot.files.get(fileKey(a.add))!);
  if (files.length === 0) return snapshot.version;
  const now = Date.now();
  const removes: RemoveFile[] = files.map((f) => removeOf(f, now));
  const result = await commit(table.storage, session, {
    operation: 'DELETE',
    operationParameters: { predicate: [`rows of ${nameOf(target)} runs that did not publish`] },
    readVersion: snapshot.version,
    actions: removes.map((remove) => ({ remove })),
    readPredicate: 'none',
    readFiles: new Set(files.map(fileKey)),
    writer: session.context?.invocationId,
    nodeId: session.context?.nodeId,
    commitInfo: { etlQuarantineRepair: orphans.map((c) => c.version) },
  });
  await lake.refresh(quarantine, session);
  return result.version;
}
