// The built-in generic tests. Each one turns (model, column, arguments) into a
// query that returns the failing rows, and the row-level ones also give the
// predicate that marks a single failing row (used by quarantine).

import * as z from 'zod';
import type { Dialect } from '../../adapters/dialect.js';
import { strictObject } from '../project/yaml.js';

export interface GenericTestInput {
  /** The model's relation, or a filtered subquery of it when `where` is set. */
  model: string;
  /** The unfiltered relation, for tests that compare the model with itself. */
  relation: string;
  column?: string;
  args: Record<string, unknown>;
  dialect: Dialect;
  /** Resolves `ref('x')` / `source('a','b')` in an argument to a relation. */
  resolveRelation(expr: string): string;
}

export interface BuiltinTest {
  /** 'required': declared under a column; 'none': on the model; 'optional': either. */
  column: 'required' | 'none' | 'optional';
  args: z.ZodType;
  sql(input: GenericTestInput): string;
  /** A predicate true for a failing row (named ROW_ALIAS), for row-level tests (quarantine). */
  failingRow?(input: GenericTestInput): string;
}

function col(input: GenericTestInput): string {
  return input.dialect.quoteIdentifier(input.column!);
}

/** The alias of the row a failingRow predicate is evaluated on. */
export const ROW_ALIAS = 'etl_row';

function rowCol(input: GenericTestInput): string {
  return `${ROW_ALIAS}.${col(input)}`;
}

function literal(value: unknown, dialect: Dialect, quote: boolean): string {
  if (!quote || typeof value === 'string') return quote ? dialect.quoteString(String(value)) : String(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null) return 'null';
  return dialect.quoteString(String(value));
}

const notNull: BuiltinTest = {
  column: 'required',
  args: strictObject({}),
  sql: (i) => `select *\nfrom ${i.model}\nwhere ${col(i)} is null`,
  failingRow: (i) => `${rowCol(i)} is null`,
};

const unique: BuiltinTest = {
  column: 'optional',
  // On a column, or on a combination: `- unique: { columns: [a, b] }` at model level.
  args: strictObject({ columns: z.array(z.string()).min(1) }).partial(),
  sql: (i) => {
    const columns = (i.args.columns as string[] | undefined) ?? [i.column!];
    const list = columns.map((c) => i.dialect.quoteIdentifier(c)).join(', ');
    const notNullFilter = columns.length === 1 ? `\nwhere ${list} is not null` : '';
    return `select ${list}, count(*) as n_records\nfrom ${i.model}${notNullFilter}\ngroup by ${list}\nhaving count(*) > 1`;
  },
};

const acceptedValues: BuiltinTest = {
  column: 'required',
  args: strictObject({ values: z.array(z.union([z.string(), z.number(), z.boolean()])).min(1), quote: z.boolean() }).partial({ quote: true }),
  sql: (i) => {
    const values = (i.args.values as unknown[]).map((v) => literal(v, i.dialect, i.args.quote !== false)).join(', ');
    return `select ${col(i)} as value_field, count(*) as n_records\nfrom ${i.model}\nwhere ${col(i)} is not null and ${col(i)} not in (${values})\ngroup by ${col(i)}`;
  },
  failingRow: (i) => {
    const values = (i.args.values as unknown[]).map((v) => literal(v, i.dialect, i.args.quote !== false)).join(', ');
    return `${rowCol(i)} is not null and ${rowCol(i)} not in (${values})`;
  },
};

const relationships: BuiltinTest = {
  column: 'required',
  args: strictObject({ to: z.string(), field: z.string() }),
  sql: (i) => {
    const parent = i.resolveRelation(String(i.args.to));
    const field = i.dialect.quoteIdentifier(String(i.args.field));
    return `select child.${col(i)} as from_field\nfrom ${i.model} as child\nleft join ${parent} as parent on child.${col(i)} = parent.${field}\nwhere child.${col(i)} is not null and parent.${field} is null`;
  },
  failingRow: (i) => {
    const parent = i.resolveRelation(String(i.args.to));
    const field = i.dialect.quoteIdentifier(String(i.args.field));
    return `${rowCol(i)} is not null and not exists (select 1 from ${parent} as etl_parent where etl_parent.${field} = ${rowCol(i)})`;
  },
};

const expressionIsTrue: BuiltinTest = {
  column: 'optional',
  args: strictObject({ expression: z.string() }),
  sql: (i) => `select *\nfrom ${i.model}\nwhere not (${i.column ? `${col(i)} ` : ''}${i.args.expression})`,
  failingRow: (i) => `not (${i.column ? `${rowCol(i)} ` : ''}${i.args.expression})`,
};

const rowCount: BuiltinTest = {
  column: 'none',
  args: strictObject({ min: z.number().int().min(0), max: z.number().int().min(0) })
    .partial()
    .refine((a) => a.min !== undefined || a.max !== undefined, { message: 'row_count needs min, max or both' }),
  sql: (i) => {
    const conditions: string[] = [];
    if (i.args.min !== undefined) conditions.push(`count(*) < ${Number(i.args.min)}`);
    if (i.args.max !== undefined) conditions.push(`count(*) > ${Number(i.args.max)}`);
    return `select count(*) as row_count\nfrom ${i.model}\nhaving ${conditions.join(' or ')}`;
  },
};

export const BUILTIN_TESTS: Record<string, BuiltinTest> = {
  not_null: notNull,
  unique,
  accepted_values: acceptedValues,
  relationships,
  expression_is_true: expressionIsTrue,
  row_count: rowCount,
};

/** Keys of a test entry that configure the test rather than being its arguments. */
export const TEST_CONFIG_KEYS = ['severity', 'warn_if', 'error_if', 'where', 'limit', 'store_failures', 'tags', 'enabled', 'name', 'meta'] as const;
