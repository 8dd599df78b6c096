// Column lineage of one query, from DuckDB's own parse tree
// (json_serialize_sql): for each output column, the upstream relation
// columns it derives from, through CTEs (recursive ones too), joins (USING
// merges both sides), aliases, `select *` (expanded with the bound schemas,
// EXCLUDE and REPLACE applied), aggregates, window functions, CASE,
// subqueries in FROM and in expressions, set operations and VALUES. A
// column is a pass-through when every step is a bare column reference;
// otherwise a transformation, with its expression. A column that cannot be
// traced (a table function, an unknown relation) is unresolved, with the
// reason, never guessed.

export interface UpstreamColumn {
  node: string;
  column: string;
}

export interface ColumnLineage {
  kind: 'passthrough' | 'transform' | 'unresolved';
  expression?: string;
  reason?: string;
  upstream: UpstreamColumn[];
}

/** A relation the query may read: a model, seed, snapshot or source, with its columns. */
export interface KnownRelation {
  node: string;
  columns: string[];
}

export interface LineageContext {
  /** Relations by lower-cased `schema.name` (and by bare name for unqualified references). */
  relations: Map<string, KnownRelation>;
  /** The query's bound output column names, in order: names for expressions without an alias. */
  outputColumns?: string[];
}

/** Internal lineage of one column while resolving. */
interface Lin {
  up: UpstreamColumn[];
  pass: boolean;
  expr?: string;
  unresolved?: string;
}

interface Col {
  name: string;
  lin: Lin;
}

interface Rel {
  alias: string;
  columns: Col[];
  /** Set when the relation's columns are unknown (table function, unknown table). */
  unknown?: string;
}

interface Scope {
  rels: Rel[];
  using: Set<string>;
  aliases: Map<string, Lin>;
  parent?: Scope;
  ctes: Map<string, Rel>;
}

type J = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const NO_LOCATION = 2 ** 53;
const EPHEMERAL_PREFIX = '__etl_ephemeral__';

/** Lineage of every output column of `parsed` (the JSON of json_serialize_sql over `sql`). */
export function queryLineage(sql: string, parsed: J, ctx: LineageContext): Map<string, ColumnLineage> {
  const out = new Map<string, ColumnLineage>();
  if (parsed.error) {
    const reason = `DuckDB's parser cannot read this SQL: ${parsed.error_message}`;
    for (const c of ctx.outputColumns ?? []) out.set(c, { kind: 'unresolved', reason, upstream: [] });
    return out;
  }
  const statement = parsed.statements?.[0]?.node;
  if (!statement) return out;
  const resolver = new Resolver(sql, ctx);
  let cols: Col[];
  try {
    cols = resolver.query(statement, new Map(), undefined, ctx.outputColumns);
  } catch (err) {
    const reason = `cannot trace this query: ${(err as Error).message}`;
    for (const c of ctx.outputColumns ?? []) out.set(c, { kind: 'unresolved', reason, upstream: [] });
    return out;
  }
  cols.forEach((c, i) => {
    const name = ctx.outputColumns?.[i] ?? c.name;
    const up = dedupe(c.lin.up);
    if (c.lin.unresolved) out.set(name, { kind: 'unresolved', reason: c.lin.unresolved, upstream: up, ...(c.lin.expr ? { expression: c.lin.expr } : {}) });
    else if (c.lin.pass) out.set(name, { kind: 'passthrough', upstream: up });
    else out.set(name, { kind: 'transform', expression: c.lin.expr ?? name, upstream: up });
  });
  return out;
}

function dedupe(up: UpstreamColumn[]): UpstreamColumn[] {
  const seen = new Set<string>();
  return up.filter((u) => {
    const k = `${u.node}\0${u.column}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

function merge(lins: Lin[], pass: boolean, expr?: string): Lin {
  const unresolved = lins.find((l) => l.unresolved)?.unresolved;
  return { up: lins.flatMap((l) => l.up), pass: pass && lins.every((l) => l.pass), expr: expr ?? lins.find((l) => !l.pass)?.expr, ...(unresolved ? { unresolved } : {}) };
}

class Resolver {
  constructor(
    private readonly sql: string,
    private readonly ctx: LineageContext,
  ) {}

  /** Output columns of a query node. */
  query(node: J, ctes: Map<string, Rel>, outer: Scope | undefined, names?: string[], filters?: Lin[]): Col[] {
    const env = this.withCtes(node, ctes, outer);
    switch (node.type) {
      case 'SELECT_NODE':
        return this.select(node, env, outer, names, filters);
      case 'SET_OPERATION_NODE':
      case 'RECURSIVE_CTE_NODE': {
        const branches: J[] = node.children ?? [node.left, node.right];
        const first = this.query(branches[0]!, env, outer, names);
        const local = new Map(env);
        if (node.type === 'RECURSIVE_CTE_NODE' && node.cte_name) {
          // The recursive branch reads the CTE itself: its first branch's columns stand in.
          local.set(String(node.cte_name).toLowerCase(), { alias: node.cte_name, columns: renameCols(first, node.aliases) });
        }
        const rest = branches.slice(1).map((b) => this.query(b, local, outer));
        return first.map((c, i) => ({ name: c.name, lin: merge([c.lin, ...rest.map((r) => r[i]?.lin ?? { up: [], pass: false, unresolved: 'set operation branches differ in width' })], true) }));
      }
      default:
        throw new Error(`${node.type} queries are not traced`);
    }
  }

  private withCtes(node: J, ctes: Map<string, Rel>, outer: Scope | undefined): Map<string, Rel> {
    const entries: J[] = node.cte_map?.map ?? [];
    if (!entries.length) return ctes;
    const env = new Map(ctes);
    for (const e of entries) {
      const name = String(e.key);
      const cols = renameCols(this.query(e.value.query.node, env, outer), e.value.aliases);
      env.set(name.toLowerCase(), { alias: name, columns: cols });
    }
    return env;
  }

  private select(node: J, ctes: Map<string, Rel>, outer: Scope | undefined, names?: string[], filters?: Lin[]): Col[] {
    const scope: Scope = { rels: [], using: new Set(), aliases: new Map(), parent: outer, ctes };
    if (node.from_table) this.from(node.from_table, scope);
    if (filters) for (const f of [node.where_clause, node.having]) if (f) filters.push(this.expr(f, scope));
    const out: Col[] = [];
    for (const item of node.select_list as J[]) {
      if (item.class === 'STAR' && !item.columns && !item.expr) {
        for (const c of this.star(item, scope)) out.push(c);
        continue;
      }
      const lin = this.expr(item, scope);
      const name = item.alias || names?.[out.length] || (item.class === 'COLUMN_REF' ? item.column_names.at(-1) : this.text(item) ?? `col${out.length}`);
      if (item.alias) scope.aliases.set(String(item.alias).toLowerCase(), lin);
      out.push({ name, lin });
    }
    return out;
  }

  private star(item: J, scope: Scope): Col[] {
    const exclude = new Set<string>([...(item.exclude_list ?? []), ...(item.qualified_exclude_list ?? []).map((q: J) => q.column_names?.at?.(-1) ?? q)].map((x: unknown) => String(Array.isArray(x) ? x.at(-1) : x).toLowerCase()));
    const replace = new Map<string, J>((item.replace_list ?? []).map((r: J) => [String(r.key).toLowerCase(), r.value]));
    const rels = item.relation_name ? scope.rels.filter((r) => r.alias.toLowerCase() === String(item.relation_name).toLowerCase()) : scope.rels;
    const out: Col[] = [];
    const seenUsing = new Set<string>();
    for (const r of rels) {
      if (r.unknown) {
        out.push({ name: `*`, lin: { up: [], pass: false, unresolved: r.unknown } });
        continue;
      }
      for (const c of r.columns) {
        const key = c.name.toLowerCase();
        if (exclude.has(key)) continue;
        // A USING column appears once in `select *`.
        if (!item.relation_name && scope.using.has(key)) {
          if (seenUsing.has(key)) continue;
          seenUsing.add(key);
          out.push({ name: c.name, lin: this.column([c.name], scope) });
          continue;
        }
        const r2 = replace.get(key);
        out.push({ name: c.name, lin: r2 ? this.expr(r2, scope) : c.lin });
      }
    }
    return out;
  }

  private from(t: J, scope: Scope): void {
    switch (t.type) {
      case 'EMPTY':
        return;
      case 'BASE_TABLE': {
        const alias = t.alias || t.table_name;
        // An inlined ephemeral model is a node of its own: lineage points at it, not through it.
        const ephemeral = !t.schema_name && String(t.table_name).startsWith(EPHEMERAL_PREFIX);
        const cte = !t.schema_name && !(ephemeral && this.ctx.relations.has(String(t.table_name).toLowerCase())) ? this.findCte(String(t.table_name).toLowerCase(), scope) : undefined;
        if (cte) {
          scope.rels.push({ alias, columns: renameCols(cte.columns, t.column_name_alias) });
          return;
        }
        const key = `${t.schema_name ? `${String(t.schema_name).toLowerCase()}.` : ''}${String(t.table_name).toLowerCase()}`;
        const known = this.ctx.relations.get(key);
        if (!known) {
          scope.rels.push({ alias, columns: [], unknown: `reads ${t.schema_name ? `${t.schema_name}.` : ''}${t.table_name}, which is not a ref or source of the project` });
          return;
        }
        const cols = known.columns.map((c) => ({ name: c, lin: { up: [{ node: known.node, column: c }], pass: true } }));
        scope.rels.push({ alias, columns: renameCols(cols, t.column_name_alias) });
        return;
      }
      case 'JOIN': {
        this.from(t.left, scope);
        this.from(t.right, scope);
        for (const u of t.using_columns ?? []) scope.using.add(String(u).toLowerCase());
        return;
      }
      case 'SUBQUERY': {
        const cols = this.query(t.subquery.node, scope.ctes, scope.parent);
        scope.rels.push({ alias: t.alias || '', columns: renameCols(cols, t.column_name_alias) });
        return;
      }
      case 'EXPRESSION_LIST': {
        const first: J[] = t.values?.[0] ?? [];
        const cols = first.map((_v, i) => ({ name: t.expected_names?.[i] || `col${i}`, lin: merge((t.values as J[][]).map((row) => this.expr(row[i]!, scope)), false, 'values') }));
        scope.rels.push({ alias: t.alias || 'valueslist', columns: renameCols(cols, t.column_name_alias) });
        return;
      }
      case 'TABLE_FUNCTION':
        scope.rels.push({ alias: t.alias || t.function?.function_name || '', columns: [], unknown: `reads the table function ${t.function?.function_name ?? '?'}` });
        return;
      default:
        scope.rels.push({ alias: t.alias || '', columns: [], unknown: `${String(t.type).toLowerCase()} in FROM is not traced` });
    }
  }

  private findCte(name: string, scope: Scope): Rel | undefined {
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const c = s.ctes.get(name);
      if (c) return c;
    }
    return undefined;
  }

  /** A column reference, resolved against the scope and its parents. */
  private column(names: string[], scope: Scope): Lin {
    const col = names.at(-1)!.toLowerCase();
    const qualifier = names.length > 1 ? names[names.length - 2]!.toLowerCase() : undefined;
    for (let s: Scope | undefined = scope; s; s = s.parent) {
      const rels = qualifier ? s.rels.filter((r) => r.alias.toLowerCase() === qualifier) : s.rels;
      const hits: Lin[] = [];
      for (const r of rels) {
        const c = r.columns.find((x) => x.name.toLowerCase() === col);
        if (c) hits.push(c.lin);
      }
      if (hits.length) return hits.length === 1 ? hits[0]! : merge(hits, true);
      if (!qualifier && s.aliases.has(col)) return s.aliases.get(col)!;
      const unknown = rels.find((r) => r.unknown);
      if (unknown) return { up: [], pass: false, unresolved: unknown.unknown };
      if (qualifier && rels.length === 0 && names.length === 2) {
        // `s.field`: a struct column's field, not a table alias.
        const struct = this.column([names[0]!], s);
        if (!struct.unresolved) return { ...struct, pass: false, expr: names.join('.') };
      }
    }
    return { up: [], pass: false, unresolved: `column ${names.join('.')} is not found in the query's inputs` };
  }

  private expr(e: J, scope: Scope, lambdaParams: Set<string> = new Set()): Lin {
    if (e.class === 'COLUMN_REF') {
      if (e.column_names.length === 1 && lambdaParams.has(String(e.column_names[0]).toLowerCase())) return { up: [], pass: false };
      return this.column(e.column_names, scope);
    }
    const parts: Lin[] = [];
    const visit = (v: unknown, params: Set<string>) => {
      if (!v || typeof v !== 'object') return;
      if (Array.isArray(v)) {
        for (const x of v) visit(x, params);
        return;
      }
      const o = v as J;
      if (o.class === 'SUBQUERY' && o.subquery) {
        // EXISTS is decided by the subquery's filter; a scalar or IN subquery by its output.
        const filters: Lin[] | undefined = /EXISTS/.test(String(o.subquery_type)) ? [] : undefined;
        const cols = this.query(o.subquery.node, scope.ctes, scope, undefined, filters);
        parts.push(merge(filters ?? cols.map((c) => c.lin), false));
        visit(o.child, params);
        return;
      }
      if (o.class === 'LAMBDA') {
        const names = new Set(params);
        const lhs = o.lhs;
        for (const ref of lhs?.class === 'COLUMN_REF' ? [lhs] : (lhs?.children ?? [])) names.add(String(ref.column_names?.at(-1)).toLowerCase());
        visit(o.expr, names);
        return;
      }
      if (o.class === 'COLUMN_REF') {
        parts.push(this.expr(o, scope, params));
        return;
      }
      for (const [k, x] of Object.entries(o)) if (k !== 'cast_type' && k !== 'value') visit(x, params);
    };
    visit(e, lambdaParams);
    return merge(parts, false, this.text(e));
  }

  /** The SQL text of an expression, cut from the compiled SQL at its parse locations. */
  private text(e: J): string | undefined {
    let start = NO_LOCATION;
    const walk = (v: unknown) => {
      if (!v || typeof v !== 'object') return;
      if (Array.isArray(v)) return v.forEach(walk);
      const o = v as J;
      if (typeof o.query_location === 'number' && o.query_location < start) start = o.query_location;
      for (const [k, x] of Object.entries(o)) if (k !== 'subquery') walk(x);
    };
    walk(e);
    if (start >= NO_LOCATION) return undefined;
    if (!(typeof e.query_location === 'number' && e.query_location < NO_LOCATION)) {
      // An operator without a location of its own (coalesce, nullif): start at its name.
      const m = /([A-Za-z_][A-Za-z0-9_]*)\s*\(\s*$/.exec(this.sql.slice(Math.max(0, start - 64), start));
      if (m) start -= m[0].length;
    }
    if (e.class === 'SUBQUERY') {
      const open = this.sql.lastIndexOf('(', start);
      if (open !== -1 && /^\s*$/.test(this.sql.slice(open + 1, start))) start = open;
    }
    return cutExpression(this.sql, start, e.alias);
  }
}

function renameCols(cols: Col[], aliases: unknown): Col[] {
  const names = Array.isArray(aliases) ? (aliases as string[]) : [];
  if (!names.length) return cols;
  return cols.map((c, i) => (i < names.length ? { name: names[i]!, lin: c.lin } : c));
}

const STOP = /^(from|where|group|having|window|qualify|order|limit|offset|union|except|intersect|as|on|using|join|left|right|inner|full|cross)\b/i;

/** The expression starting at `start`: up to a top-level comma, keyword, closing parenthesis or `as alias`. */
export function cutExpression(sql: string, start: number, alias?: string): string {
  let depth = 0;
  let i = start;
  let caseDepth = 0;
  while (i < sql.length) {
    const ch = sql[i]!;
    if (ch === "'" || ch === '"') {
      const end = sql.indexOf(ch, i + 1);
      i = end === -1 ? sql.length : end + 1;
      continue;
    }
    if (ch === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      if (depth === 0 && caseDepth === 0) break;
      i = nl === -1 ? sql.length : nl;
      continue;
    }
    if (ch === '(') depth++;
    else if (ch === ')') {
      if (depth === 0) break;
      depth--;
    } else if (depth === 0 && ch === ',') break;
    else if (/[A-Za-z_]/.test(ch) && (i === start || !/[A-Za-z0-9_$]/.test(sql[i - 1]!))) {
      const word = /^[A-Za-z_][A-Za-z0-9_$]*/.exec(sql.slice(i))![0];
      const lower = word.toLowerCase();
      if (lower === 'case') caseDepth++;
      else if (lower === 'end' && caseDepth > 0) caseDepth--;
      else if (depth === 0 && caseDepth === 0 && i > start && STOP.test(word)) break;
      else if (depth === 0 && caseDepth === 0 && i > start && alias && lower === alias.toLowerCase() && /\s$/.test(sql.slice(start, i))) break;
      i += word.length;
      continue;
    }
    i++;
  }
  return sql.slice(start, i).replace(/\s+/g, ' ').trim();
}
