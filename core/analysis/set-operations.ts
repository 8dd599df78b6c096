// Set operations whose branches disagree on a column's type. DuckDB unifies
// the branches of a UNION (EXCEPT, INTERSECT) by casting every branch to a
// common type, so `select date ... union all select varchar ...` binds and
// silently turns the dates into text; Postgres refuses the same query
// ("UNION types text and date cannot be matched"). The check reports a
// column whose branches are of different type families (numbers, text,
// dates and timestamps, times, booleans, ...); widening within a family
// (INTEGER and BIGINT, DATE and TIMESTAMP) and an untyped NULL are accepted,
// as on Postgres. UNION BY NAME matches columns by name and is left alone.
//
// Each branch is bound on its own: DuckDB's parse of the query
// (json_serialize_sql), the branch given the CTEs in its scope, turned back
// into SQL (json_deserialize_sql) and described. A branch that cannot be
// bound on its own (a correlated subquery) leaves its set operation
// unchecked here; the query as a whole has bound already.

import type { BoundColumn } from './binder.js';

type Json = Record<string, unknown>;

export interface SetOperationMismatch {
  message: string;
  hint: string;
  /** Offset in the SQL of the first expression of the disagreeing branch's column. */
  offset?: number;
}

export interface SetOperationDescriber {
  /** DuckDB's full parse tree of a statement, as json_serialize_sql gives it. */
  parse(sql: string): Promise<string>;
  /** The SQL of a parse tree (json_deserialize_sql). */
  unparse(json: string): Promise<string>;
  /** Result columns of a query, or undefined when it does not bind. */
  describe(sql: string): Promise<BoundColumn[] | undefined>;
}

/** Cheap test first: most models have no set operation. */
export function mayHaveSetOperation(sql: string): boolean {
  return /\b(union|except|intersect)\b/i.test(sql);
}

// json_serialize_sql writes "no location" as 2^64-1, which JSON.parse cannot keep exactly.
const NO_LOCATION = '18446744073709551615';

export async function setOperationMismatch(db: SetOperationDescriber, sql: string): Promise<SetOperationMismatch | undefined> {
  const text = await db.parse(sql);
  const tree = JSON.parse(text.replaceAll(`"query_location":${NO_LOCATION}`, '"query_location":-1')) as { error?: boolean; statements?: Array<{ node: Json }> };
  if (tree.error || !tree.statements?.length) return undefined;
  const statement = tree.statements[0]!;
  const chains: Array<{ root: Json; leaves: Json[]; scope: Json[] }> = [];
  collect(statement.node, [], chains);
  const toSql = (node: Json, scope: Json[]) => {
    const own = ((node.cte_map as Json | undefined)?.map as Json[] | undefined) ?? [];
    const byKey = new Map<string, Json>();
    for (const e of [...scope, ...own]) byKey.set(String(e.key), e);
    const json = JSON.stringify({ ...tree, statements: [{ ...statement, node: { ...node, cte_map: { map: [...byKey.values()] } } }] });
    return db.unparse(json.replaceAll('"query_location":-1', `"query_location":${NO_LOCATION}`));
  };
  for (const chain of chains) {
    const described: BoundColumn[][] = [];
    for (const leaf of chain.leaves) {
      const cols = await db.describe(await toSql(leaf, chain.scope));
      if (!cols) break;
      described.push(cols);
    }
    if (described.length !== chain.leaves.length) continue;
    const width = Math.min(...described.map((d) => d.length));
    for (let i = 0; i < width; i++) {
      const first = described.findIndex((d) => family(d[i]!.type) !== undefined);
      if (first === -1) continue;
      const other = described.findIndex((d, k) => k > first && family(d[i]!.type) !== undefined && family(d[i]!.type) !== family(described[first]![i]!.type));
      if (other === -1) continue;
      const name = described[0]![i]!.name;
      const [a, b] = [described[first]![i]!.type, described[other]![i]!.type];
      const unified = (await db.describe(await toSql(chain.root, chain.scope)))?.[i]?.type;
      const kind = String(chain.root.setop_type ?? 'UNION').replace(/_/g, ' ');
      return {
        message: `${kind} branches disagree on the type of column ${i + 1} "${name}": ${a} in branch ${first + 1}, ${b} in branch ${other + 1}`,
        hint: `${unified ? `DuckDB would silently cast both to ${unified}` : 'DuckDB would silently cast both to one type'} (Postgres refuses it): cast one branch explicitly, e.g. cast(... as ${a.toLowerCase()})`,
        offset: locationOf(chain.leaves[other]!, i),
      };
    }
  }
  return undefined;
}

/** Every set operation (a chain of them counts once, as its leaves), with the CTEs in scope. */
function collect(value: unknown, scope: Json[], out: Array<{ root: Json; leaves: Json[]; scope: Json[] }>): void {
  if (Array.isArray(value)) {
    for (const v of value) collect(v, scope, out);
    return;
  }
  if (!value || typeof value !== 'object') return;
  const node = value as Json;
  const own = ((node.cte_map as Json | undefined)?.map as Json[] | undefined) ?? [];
  const inner = own.length ? [...scope, ...own] : scope;
  if (node.type === 'SET_OPERATION_NODE' && node.setop_type !== 'UNION_BY_NAME') {
    const leaves: Json[] = [];
    const flatten = (n: Json) => {
      if (n.type === 'SET_OPERATION_NODE' && n.setop_type !== 'UNION_BY_NAME' && !((n.cte_map as Json | undefined)?.map as Json[] | undefined)?.length) {
        flatten(n.left as Json);
        flatten(n.right as Json);
      } else leaves.push(n);
    };
    flatten(node.left as Json);
    flatten(node.right as Json);
    out.push({ root: { ...node, cte_map: { map: [] } }, leaves, scope: inner });
    collect(own, inner, out);
    for (const leaf of leaves) collect(leaf, inner, out);
    return;
  }
  for (const v of Object.values(node)) collect(v, inner, out);
}

/** Where a branch's i-th select expression starts in the SQL. */
function locationOf(leaf: Json, i: number): number | undefined {
  const list = leaf.select_list as Json[] | undefined;
  const expr = list && list.length > i && !list.some((e) => e.class === 'STAR') ? list[i] : list?.[0];
  return expr ? firstLocation(expr) : undefined;
}

function firstLocation(value: unknown): number | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const loc = (value as Json).query_location;
  if (typeof loc === 'number' && loc >= 0) return loc;
  for (const v of Object.values(value as Json)) {
    const found = firstLocation(v);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A DuckDB type's family: types within one widen into each other; across families DuckDB casts silently. */
function family(type: string): string | undefined {
  const t = type.toUpperCase().replace(/^"|"$/g, '');
  if (t === 'NULL') return undefined;
  if (/\[\d*\]$/.test(t)) return 'LIST';
  if (/^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL|VARINT|BIGNUM)\b/.test(t)) return 'number';
  if (/^(VARCHAR|ENUM|JSON)\b/.test(t)) return 'text';
  if (/^(DATE|TIMESTAMP)\b/.test(t)) return 'datetime';
  if (/^TIME\b/.test(t)) return 'time';
  return t.replace(/\(.*$/s, '');
}
