// Model contracts: with `contract: { enforced: true }` the declared columns
// (name, data_type, constraints) are checked on the staged result before it
// replaces the previous version. A mismatch fails the build with a table of
// expected against actual columns, and the previous table is untouched.

import type { Adapter, AdapterSession, Relation } from '../../../adapters/adapter.js';
import type { ManifestNode } from '../../compiler/manifest.js';
import { formatTable } from '../../reporting/table.js';

export class ContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractError';
  }
}

export async function enforceContract(adapter: Adapter, session: AdapterSession, node: ManifestNode, staged: Relation): Promise<void> {
  const declared = Object.values(node.columns);
  const actual = await adapter.listColumns(session, staged);
  const canonical = (t: string | undefined) => (t ? adapter.dialect.canonicalType(t) : '');
  const actualByName = new Map(actual.map((c) => [c.name.toLowerCase(), c]));
  const declaredNames = new Set(declared.map((c) => c.name.toLowerCase()));
  const rows: string[][] = [];
  let mismatch = false;
  for (const c of declared) {
    const a = actualByName.get(c.name.toLowerCase());
    const ok = !!a && (!c.data_type || canonical(c.data_type) === canonical(a.type));
    if (!ok) mismatch = true;
    rows.push([c.name, c.data_type ?? '(any)', a ? a.type : '(missing)', ok ? '' : 'MISMATCH']);
  }
  for (const a of actual) {
    if (declaredNames.has(a.name.toLowerCase())) continue;
    mismatch = true;
    rows.push([a.name, '(not declared)', a.type, 'MISMATCH']);
  }
  if (mismatch) {
    throw new ContractError(
      `contract of ${node.name} is not met; the previous version is kept\n${formatTable(['column', 'expected', 'actual', ''], rows)}\n` +
        'fix the model SQL (cast the column) or the columns: of its yml entry',
    );
  }
  await checkConstraints(adapter, session, node, staged);
}

async function checkConstraints(adapter: Adapter, session: AdapterSession, node: ManifestNode, staged: Relation): Promise<void> {
  const q = (n: string) => adapter.dialect.quoteIdentifier(n);
  const rel = adapter.dialect.relation(staged.schema, staged.name);
  const checks: Array<{ label: string; sql: string }> = [];
  for (const c of Object.values(node.columns)) {
    for (const constraint of c.constraints ?? []) {
      const type = String(constraint.type ?? '');
      if (type === 'not_null' || type === 'primary_key') {
        checks.push({ label: `${c.name} not_null`, sql: `select count(*) from ${rel} where ${q(c.name)} is null` });
      }
      if (type === 'unique' || type === 'primary_key') {
        checks.push({ label: `${c.name} ${type}`, sql: `select count(*) from (select ${q(c.name)} from ${rel} where ${q(c.name)} is not null group by ${q(c.name)} having count(*) > 1) as d` });
      }
      if (type === 'check' && constraint.expression) {
        checks.push({ label: `${c.name} check (${constraint.expression})`, sql: `select count(*) from ${rel} where not (${String(constraint.expression)})` });
      }
    }
  }
  const failed: string[] = [];
  for (const check of checks) {
    const r = await session.query(check.sql);
    const n = Number(r.rows[0]?.[0] ?? 0);
    if (n > 0) failed.push(`${check.label}: ${n} violating row${n === 1 ? '' : 's'}`);
  }
  if (failed.length) {
    throw new ContractError(`contract constraints of ${node.name} are violated; the previous version is kept\n  ${failed.join('\n  ')}`);
  }
}
