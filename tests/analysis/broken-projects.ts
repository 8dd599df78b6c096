// The corpus of broken projects for static analysis (issue #16): each case is
// project-template with a few edits, and the errors `etl compile --check`
// must report (file, line, and a piece of the message). Shared by the DuckDB
// and Postgres suites.

import { expect } from 'vitest';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Diagnostic } from '../../core/errors.js';

export interface ExpectedError {
  file: string;
  line: number;
  col?: number;
  message: RegExp;
  hint?: RegExp;
}

export interface BrokenProject {
  name: string;
  /** File -> new text, or a function of the template's text. */
  edits: Record<string, string | ((text: string) => string)>;
  errors: ExpectedError[];
  /** Models listed as left unchecked downstream (in a hint). */
  unchecked?: string[];
  /** Only on this engine (DuckDB and Postgres differ in what they accept). */
  only?: 'duckdb' | 'postgres';
}

const replace = (from: string | RegExp, to: string) => (text: string) => {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`corpus edit found nothing to replace: ${String(from)}`);
  return out;
};

const ORDERS_CONTRACT = `models:
  - name: orders
    config: { contract: { enforced: true } }
    columns:
      - name: order_id
        data_type: bigint
      - name: customer_id
        data_type: bigint
      - name: order_date
        data_type: date
      - name: status
        data_type: varchar
      - name: credit_card_amount
        data_type: decimal(38,2)
      - name: bank_transfer_amount
        data_type: decimal(38,2)
      - name: gift_card_amount
        data_type: decimal(38,2)
      - name: paypal_amount
        data_type: decimal(38,2)
      - name: amount
        data_type: decimal(38,2)
`;

// The same contract in Postgres's types (seeds load as integer, text, numeric).
const ORDERS_CONTRACT_PG = ORDERS_CONTRACT.replace(/bigint/g, 'integer').replace(/varchar/g, 'text').replace(/decimal\(38,2\)/g, 'numeric');

export const BROKEN_PROJECTS: BrokenProject[] = [
  {
    name: 'contract type mismatch (Postgres types)',
    edits: { 'models/marts/schema.yml': ORDERS_CONTRACT_PG.replace('      - name: amount\n        data_type: numeric', '      - name: amount\n        data_type: integer') },
    errors: [{ file: 'models/marts/schema.yml', line: 21, message: /contract of orders: column "amount" is declared integer but the query returns numeric/ }],
    only: 'postgres',
  },
  {
    name: 'contract column missing from the query (Postgres types)',
    edits: { 'models/marts/schema.yml': `${ORDERS_CONTRACT_PG}      - name: discount\n        data_type: numeric\n` },
    errors: [{ file: 'models/marts/schema.yml', line: 23, message: /contract of orders: column "discount" is declared but the query does not return it/ }],
    only: 'postgres',
  },
  {
    name: 'union of text and a date (Postgres rejects what DuckDB casts)',
    edits: { 'models/staging/stg_orders.sql': (t) => `${t.trimEnd()}
union all
select order_id, customer_id, cast(order_date as date) as order_date, order_date as status from {{ref "raw_orders"}}
` },
    errors: [{ file: 'models/staging/stg_orders.sql', line: 11, col: 71, message: /UNION types text and date cannot be matched \(postgres\)/ }],
    only: 'postgres',
  },
  {
    // DuckDB has no to_char: the server binds the model, and its message comes back at the template's line and column.
    name: 'a Postgres-only function misused, found by the server',
    edits: { 'models/staging/stg_orders.sql': replace('    status\n', "    status,\n    to_char(order_date, 'YYYY-MM') + 1 as order_month\n") },
    errors: [{ file: 'models/staging/stg_orders.sql', line: 7, col: 36, message: /^operator does not exist: text \+ integer \(postgres\)$/ }],
    unchecked: ['orders', 'customers'],
    only: 'postgres',
  },
  {
    name: 'union of text and a date (DuckDB would cast the dates to text silently)',
    edits: { 'models/staging/stg_orders.sql': (t) => `${t.trimEnd()}
union all
select order_id, customer_id, cast(order_date as date) as order_date, order_date as status from {{ref "raw_orders"}}
` },
    errors: [{ file: 'models/staging/stg_orders.sql', line: 11, col: 71, message: /^UNION branches disagree on the type of column 4 "status": VARCHAR in branch 1, DATE in branch 2$/, hint: /DuckDB would silently cast both to VARCHAR/ }],
    unchecked: ['orders', 'customers'],
    only: 'duckdb',
  },
  {
    name: 'union of a number and text inside a CTE, three branches',
    edits: {
      'models/marts/customers.sql': replace(
        '    group by customer_id\n),',
        "    group by customer_id\n),\n\nsegments as (\n    select 1 as segment_id, 'new' as label\n    union all\n    select 2, 'returning'\n    union all\n    select 'three', 3\n),",
      ),
    },
    errors: [{ file: 'models/marts/customers.sql', line: 17, col: 12, message: /^UNION branches disagree on the type of column 1 "segment_id": INTEGER in branch 1, VARCHAR in branch 3$/ }],
    only: 'duckdb',
  },
  {
    name: 'misspelled column',
    edits: { 'models/staging/stg_orders.sql': replace('    customer_id,', '    customr_id,') },
    errors: [{ file: 'models/staging/stg_orders.sql', line: 4, col: 5, message: /column "customr_id" not found in raw_orders \(did you mean "customer_id"\?\)/ }],
    unchecked: ['orders', 'customers'],
  },
  {
    name: 'misspelled qualified column',
    edits: { 'models/marts/orders.sql': replace('    o.status,', '    o.statuss,') },
    errors: [{ file: 'models/marts/orders.sql', line: 20, col: 5, message: /column "statuss" not found in stg_orders \(did you mean "status"\?\)/ }],
  },
  {
    name: 'column removed upstream',
    edits: { 'models/staging/stg_orders.sql': replace('    cast(order_date as date) as order_date,\n    status', '    cast(order_date as date) as order_date') },
    errors: [{ file: 'models/marts/orders.sql', line: 20, message: /column "status" not found in stg_orders/ }],
  },
  {
    name: 'column renamed upstream breaks two models at once',
    edits: { 'models/staging/stg_payments.sql': replace('as amount\n', 'as amount_usd\n') },
    errors: [
      { file: 'models/marts/customers.sql', line: 17, message: /column "amount" not found in stg_payments \(did you mean "amount_/ },
      { file: 'models/marts/orders.sql', line: 7, message: /column "amount" not found in stg_payments/ },
    ],
  },
  {
    name: 'ambiguous column in a join',
    edits: { 'models/marts/customers.sql': replace('        o.customer_id,\n        sum(p.amount)', '        o.customer_id,\n        max(order_id) as last_order,\n        sum(p.amount)') },
    errors: [{ file: 'models/marts/customers.sql', line: 17, message: /column "order_id" is ambiguous/, hint: /o\.order_id|p\.order_id/ }],
  },
  {
    name: 'wrong function arity',
    edits: { 'models/staging/stg_customers.sql': replace('lower(email)', 'lower(email, 2)') },
    errors: [{ file: 'models/staging/stg_customers.sql', line: 7, message: /lower\(VARCHAR, INTEGER_LITERAL\)/ }],
    only: 'duckdb',
  },
  {
    name: 'unknown function',
    edits: { 'models/staging/stg_customers.sql': replace('lower(email)', 'lowerr(email)') },
    errors: [{ file: 'models/staging/stg_customers.sql', line: 7, message: /lowerr/ }],
  },
  {
    name: 'type mismatch in a comparison',
    edits: { 'models/staging/stg_orders.sql': replace(">= cast('{{var \"start_date\"}}' as date)", '>= 20240101') },
    errors: [{ file: 'models/staging/stg_orders.sql', line: 9, message: /compare|operator does not exist/i }],
  },
  {
    name: 'type mismatch in an IN subquery',
    edits: { 'models/marts/orders.sql': replace('left join order_payments as p on p.order_id = o.order_id', 'left join order_payments as p on p.order_id = o.order_id\nwhere o.order_date in (select status from {{ref "stg_orders"}})') },
    errors: [{ file: 'models/marts/orders.sql', line: 29, message: /compare|operator does not exist/i }],
  },
  {
    name: 'union with a different number of columns',
    edits: { 'models/staging/stg_orders.sql': (t) => `${t.trimEnd()}\nunion all\nselect order_id, customer_id, cast(order_date as date) as order_date from {{ref "raw_orders"}}\n` },
    errors: [{ file: 'models/staging/stg_orders.sql', line: 1, message: /same number of (result )?columns|each UNION query must have the same number of columns/i }],
  },
  {
    name: 'aggregate without group by',
    edits: { 'models/marts/customers.sql': replace('    group by customer_id\n', '') },
    errors: [{ file: 'models/marts/customers.sql', line: 4, message: /GROUP BY/ }],
  },
  {
    name: 'contract type mismatch',
    edits: { 'models/marts/schema.yml': ORDERS_CONTRACT.replace('      - name: amount\n        data_type: decimal(38,2)', '      - name: amount\n        data_type: integer') },
    errors: [{ file: 'models/marts/schema.yml', line: 21, message: /contract of orders: column "amount" is declared integer but the query returns DECIMAL\(38,2\)/ }],
    only: 'duckdb',
  },
  {
    name: 'contract column missing from the query',
    edits: { 'models/marts/schema.yml': `${ORDERS_CONTRACT}      - name: discount\n        data_type: decimal(38,2)\n` },
    errors: [{ file: 'models/marts/schema.yml', line: 23, message: /contract of orders: column "discount" is declared but the query does not return it/ }],
    only: 'duckdb',
  },
  {
    name: 'contract with an undeclared column',
    edits: { 'models/marts/schema.yml': ORDERS_CONTRACT.replace('      - name: paypal_amount\n        data_type: decimal(38,2)\n', '') },
    errors: [{ file: 'models/marts/schema.yml', line: 2, message: /undeclared column "paypal_amount"/ }],
    only: 'duckdb',
  },
  {
    name: 'error two hops downstream of a changed seed',
    edits: { 'seeds/raw_payments.csv': replace('payment_id,order_id,payment_method,amount_cents', 'payment_id,order_id,payment_method,cents') },
    errors: [{ file: 'models/staging/stg_payments.sql', line: 6, message: /column "amount_cents" not found in raw_payments/ }],
    unchecked: ['orders', 'customers'],
  },
  {
    // The seed's column renamed passes stg_orders (select *) and breaks orders, two hops down; what reads orders is unchecked.
    name: 'error two hops downstream of a renamed seed column, through a select *',
    edits: {
      'seeds/raw_orders.csv': replace('order_id,customer_id,order_date,status', 'order_id,customer_id,order_date,state'),
      'models/staging/stg_orders.sql': replace(/select\n[\s\S]*?from \{\{ref "raw_orders"\}\}/, 'select *\nfrom {{ref "raw_orders"}}'),
      'models/marts/order_statuses.sql': 'select status, count(*) as orders\nfrom {{ref "orders"}}\ngroup by status\n',
    },
    errors: [{ file: 'models/marts/orders.sql', line: 20, col: 5, message: /column "status" not found in stg_orders \(did you mean "state"\?\)/ }],
    unchecked: ['order_statuses'],
  },
  {
    name: 'misspelled column inside a CTE',
    edits: { 'models/marts/customers.sql': replace('min(order_date)', 'min(order_datee)') },
    errors: [{ file: 'models/marts/customers.sql', line: 5, col: 13, message: /column "order_datee" not found in stg_orders \(did you mean "order_date"\?\)/ }],
  },
  {
    name: 'error in an ephemeral model',
    edits: {
      'models/staging/stg_orders.sql': (t) => `{{config materialized="ephemeral"}}\n${t.replace('    status\n', '    statu\n')}`,
    },
    errors: [{ file: 'models/staging/stg_orders.sql', line: 7, message: /column "statu" not found in raw_orders/ }],
    unchecked: ['orders', 'customers'],
  },
  {
    name: 'error in the consumer of an ephemeral model',
    edits: {
      'models/staging/stg_orders.sql': (t) => `{{config materialized="ephemeral"}}\n${t}`,
      'models/marts/orders.sql': replace('    o.order_date,', '    o.order_day,'),
    },
    errors: [{ file: 'models/marts/orders.sql', line: 19, col: 5, message: /column "order_day" not found in stg_orders \(did you mean "order_date"\?\)/ }],
  },
  {
    name: 'error in the incremental branch',
    edits: {
      'models/marts/orders.sql': (t) =>
        t.replace('{{config materialized="table"}}', '{{config materialized="incremental" unique_key="order_id"}}') +
        '\n{{#if is_incremental}}\nwhere o.order_date > (select max(order_dat) from {{this}})\n{{/if}}\n',
    },
    errors: [{ file: 'models/marts/orders.sql', line: 31, message: /column "order_dat" not found/ }],
  },
  {
    name: 'misspelled partial argument',
    edits: { 'models/staging/stg_payments.sql': replace('column="amount_cents"', 'column="amount_cent"') },
    errors: [{ file: 'models/staging/stg_payments.sql', line: 7, message: /column "amount_cent" not found in raw_payments \(did you mean "amount_cents"\?\)/ }],
  },
  {
    name: 'two broken models in one run',
    edits: {
      'models/staging/stg_customers.sql': replace('    country,', '    contry,'),
      'models/staging/stg_payments.sql': replace('    payment_method,', '    payment_mthod,'),
    },
    errors: [
      { file: 'models/staging/stg_customers.sql', line: 8, message: /column "contry" not found in raw_customers \(did you mean "country"\?\)/ },
      { file: 'models/staging/stg_payments.sql', line: 5, message: /column "payment_mthod" not found in raw_payments/ },
    ],
  },
  {
    name: 'unknown column in having',
    edits: { 'models/marts/customers.sql': replace('    group by o.customer_id\n', '    group by o.customer_id\n    having sum(p.amont) > 0\n') },
    errors: [{ file: 'models/marts/customers.sql', line: 21, message: /column "amont" not found in stg_payments \(did you mean "amount"\?\)/ }],
  },
  {
    name: 'unknown type in a cast',
    edits: { 'models/staging/stg_orders.sql': replace('    cast(order_date as date) as order_date,', '    cast(order_date as dat) as order_date,') },
    errors: [{ file: 'models/staging/stg_orders.sql', line: 5, message: /dat/ }],
  },
  {
    name: 'unknown column in order by',
    edits: { 'models/marts/orders.sql': (t) => `${t.trimEnd()}\norder by o.order_idd\n` },
    errors: [{ file: 'models/marts/orders.sql', line: 29, message: /column "order_idd" not found in stg_orders \(did you mean "order_id"\?\)/ }],
  },
  {
    name: 'unknown column in a window function',
    edits: { 'models/staging/stg_orders.sql': replace('    status\n', '    status,\n    row_number() over (partition by customerid order by order_date) as order_number\n') },
    errors: [{ file: 'models/staging/stg_orders.sql', line: 7, message: /column "customerid" not found in raw_orders \(did you mean "customer_id"\?\)/ }],
  },
  {
    name: 'syntax error',
    edits: { 'models/staging/stg_customers.sql': replace('select\n', 'selec\n') },
    errors: [{ file: 'models/staging/stg_customers.sql', line: 2, message: /syntax error/ }],
  },
  {
    // The compiled SQL is three lines shorter than the template (the comment renders to nothing): the line is the template's.
    name: 'syntax error below a multi-line template comment',
    edits: { 'models/marts/orders.sql': (t) => replace('{{config materialized="table"}}\n', '{{config materialized="table"}}\n{{!-- kept out of the compiled SQL:\n  one\n  two --}}\n')(replace('    o.order_id,\n', '    o.order_id,,\n')(t)) },
    errors: [{ file: 'models/marts/orders.sql', line: 20, message: /syntax error at or near ","/ }],
  },
  {
    name: 'unknown column in a join condition',
    edits: { 'models/marts/orders.sql': replace('on p.order_id = o.order_id', 'on p.order_id = o.orderid') },
    errors: [{ file: 'models/marts/orders.sql', line: 28, message: /column "orderid" not found in stg_orders \(did you mean "order_id"\?\)/ }],
  },
  {
    name: 'unknown column in a coalesce of a CTE',
    edits: { 'models/marts/orders.sql': replace('coalesce(p.amount, 0) as amount', 'coalesce(p.amout, 0) as amount') },
    errors: [{ file: 'models/marts/orders.sql', line: 26, col: 14, message: /column "amout" not found in order_payments/ }],
  },
];

const TEMPLATE = path.resolve(import.meta.dirname, '../../project-template');
const dirs: string[] = [];
/** Deletes the projects brokenProject made (call in afterAll). */
export function removeBrokenProjects(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** project-template in a temp folder, with the case's edits (and etl.yml rewritten by `etlYml`). */
export function brokenProject(c: BrokenProject, etlYml?: (text: string) => string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'etl-check-'));
  dirs.push(dir);
  cpSync(TEMPLATE, dir, { recursive: true, filter: (src) => !src.includes(`${path.sep}target`) });
  const edits: BrokenProject['edits'] = etlYml ? { ...c.edits, 'etl.yml': etlYml } : c.edits;
  for (const [file, edit] of Object.entries(edits)) {
    const abs = path.join(dir, file);
    mkdirSync(path.dirname(abs), { recursive: true });
    writeFileSync(abs, typeof edit === 'string' ? edit : edit(existsSync(abs) ? readFileSync(abs, 'utf8') : ''));
  }
  return dir;
}

/** The diagnostics are exactly the case's errors, at their lines (and columns), with their hints. */
export function expectDiagnostics(c: BrokenProject, diagnostics: Diagnostic[]): void {
  const shown = diagnostics.map((d) => `${d.file}:${d.line}:${d.col}: ${d.message}\n  ${d.hint ?? ''}`).join('\n');
  expect(diagnostics.length, shown).toBe(c.errors.length);
  for (const e of c.errors) {
    const d = diagnostics.find((x) => x.file === e.file && e.message.test(x.message));
    expect(d, `expected ${e.file}: ${e.message} in\n${shown}`).toBeDefined();
    expect(d!.line, shown).toBe(e.line);
    if (e.col !== undefined) expect(d!.col, shown).toBe(e.col);
    if (e.hint) expect(d!.hint ?? '', shown).toMatch(e.hint);
  }
  for (const name of c.unchecked ?? []) expect(diagnostics.map((d) => d.hint ?? '').join('\n'), shown).toMatch(new RegExp(`left unchecked downstream: .*\\b${name}\\b`));
}
