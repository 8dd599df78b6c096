// Resolves a node's config from its three sources, lowest first:
// etl.yml folder defaults < properties yml `config:` < {{config}} in the
// template. {{config}} values are read from the syntax tree without rendering;
// they may be literals or subexpressions of var, env_var and list. Then
// validates the result: combinations of keys that cannot work.

import { closestMatch, type Diagnostic } from '../errors.js';
import { asList, mergeConfig } from '../project/load.js';
import { NODE_CONFIG_KEYS, nodeConfigSchema, type NodeConfigInput } from '../project/schema.js';
import { describeValueIssue } from '../project/yaml.js';
import { nodePosition } from '../templates/parse.js';
import { readEnvVar, readVar } from '../templates/helpers.js';
import type { NodeConfig, Materialization } from './manifest.js';

export interface StaticScope {
  vars: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  onEnvRead?(name: string): void;
}

/** Evaluates the hash of {{config ...}} calls into a validated partial config. */
export function evaluateTemplateConfig(calls: hbs.AST.Hash[], file: string, scope: StaticScope, errors: Diagnostic[], owner = file): NodeConfigInput {
  let merged: Record<string, unknown> = {};
  for (const hash of calls) {
    const values: Record<string, unknown> = {};
    let ok = true;
    for (const pair of hash.pairs) {
      try {
        values[pair.key] = evaluateStatic(pair.value, scope);
      } catch (err) {
        ok = false;
        errors.push({ file, ...nodePosition(pair.value), message: `config ${pair.key}: ${(err as Error).message}`, hint: (err as { hint?: string }).hint });
      }
    }
    if (!ok) continue;
    const parsed = nodeConfigSchema.safeParse(values);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const key = String(issue.path[0] ?? (issue as { keys?: string[] }).keys?.[0] ?? '');
        const pair = hash.pairs.find((p) => p.key === key) ?? hash.pairs[0];
        const pos = pair ? nodePosition(pair) : nodePosition(hash);
        if (issue.code === 'unrecognized_keys') {
          const bad = (issue as { keys: string[] }).keys[0]!;
          const badPair = hash.pairs.find((p) => p.key === bad);
          errors.push({
            file,
            ...(badPair ? nodePosition(badPair) : pos),
            message: `unknown config key "${bad}"`,
            hint: suggestKey(bad),
          });
        } else {
          const path = issue.path.map(String);
          errors.push({ file, ...pos, ...describeValueIssue(issue, getIn(values, path), path.join('.'), owner) });
        }
      }
      continue;
    }
    merged = mergeConfig(merged as NodeConfigInput, parsed.data) as Record<string, unknown>;
  }
  return merged as NodeConfigInput;
}

function getIn(values: Record<string, unknown>, path: string[]): unknown {
  let cur: unknown = values;
  for (const p of path) cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[p] : undefined;
  return cur;
}

function suggestKey(bad: string): string {
  const m = closestMatch(bad, NODE_CONFIG_KEYS);
  return m ? `did you mean "${m}"?` : `config keys: ${[...NODE_CONFIG_KEYS].join(', ')}`;
}

function evaluateStatic(expr: hbs.AST.Expression, scope: StaticScope): unknown {
  switch (expr.type) {
    case 'StringLiteral':
    case 'NumberLiteral':
    case 'BooleanLiteral':
      return (expr as hbs.AST.StringLiteral).value;
    case 'NullLiteral':
      return null;
    case 'SubExpression': {
      const sub = expr as hbs.AST.SubExpression;
      const name = (sub.path as hbs.AST.PathExpression).original;
      const args = sub.params.map((p) => evaluateStatic(p, scope));
      if (name === 'var') return readVar(scope.vars, args);
      if (name === 'list') return args;
      if (name === 'env_var') return readEnvVar(scope, args);
      throw Object.assign(new Error(`(${name} ...) cannot be used in config`), {
        hint: 'config values are read before rendering: use literals, (var "name" "default"), (env_var "NAME") or (list "a" "b")',
      });
    }
    default:
      throw Object.assign(new Error(`"${(expr as hbs.AST.PathExpression).original ?? expr.type}" cannot be used in config`), {
        hint: 'config values are read before rendering: quote strings, or use (var "name" "default")',
      });
  }
}

/** Fills defaults and normalises list-valued keys. */
export function finalizeConfig(input: NodeConfigInput, defaultMaterialization: Materialization): NodeConfig {
  const out: NodeConfig = {
    ...(input as Record<string, unknown>),
    materialized: (input.materialized as Materialization | undefined) ?? defaultMaterialization,
    enabled: input.enabled ?? true,
    tags: asList(input.tags),
    pre_hook: asList(input.pre_hook),
    post_hook: asList(input.post_hook),
    retries: input.retries ?? 0,
    meta: input.meta ?? {},
  };
  if (input.begin instanceof Date) out.begin = input.begin.toISOString();
  if (out.materialized === 'test') {
    out.severity ??= 'error';
    out.warn_if ??= '!=0';
    out.error_if ??= '!=0';
    out.store_failures ??= false;
  }
  if (out.materialized === 'incremental' && !out.incremental_strategy) {
    out.incremental_strategy = out.unique_key ? 'merge' : 'append';
  }
  return out;
}

/** Combinations of config keys that cannot work, found before anything runs. */
export function validateConfig(config: NodeConfig): Array<{ message: string; hint?: string }> {
  const out: Array<{ message: string; hint?: string }> = [];
  const strategy = config.incremental_strategy;
  if (config.materialized === 'incremental') {
    if ((strategy === 'merge' || strategy === 'delete+insert') && !config.unique_key) {
      out.push({ message: `incremental_strategy ${strategy} needs unique_key`, hint: `{{config materialized="incremental" incremental_strategy="${strategy}" unique_key="id"}}` });
    }
    if (strategy === 'insert_overwrite' && !config.partition_by) {
      out.push({ message: 'incremental_strategy insert_overwrite needs partition_by', hint: '{{config materialized="incremental" incremental_strategy="insert_overwrite" partition_by="order_date"}}' });
    }
    if (strategy === 'microbatch') {
      for (const key of ['event_time', 'batch_size', 'begin'] as const) {
        if (config[key] === undefined) out.push({ message: `microbatch needs ${key}`, hint: '{{config materialized="incremental" incremental_strategy="microbatch" event_time="created_at" batch_size="day" begin="2024-01-01"}}' });
      }
      if (config.begin !== undefined && Number.isNaN(new Date(/^\d{4}-\d{2}-\d{2}$/.test(String(config.begin)) ? `${config.begin}T00:00:00Z` : String(config.begin)).getTime())) {
        out.push({ message: `begin "${config.begin}" is not a date`, hint: 'write begin="2024-01-01"' });
      }
    }
  } else if (strategy && config.materialized !== 'snapshot' && config.materialized !== 'test') {
    out.push({ message: `incremental_strategy is set but the model is materialized as ${config.materialized}`, hint: 'add materialized="incremental"' });
  }
  if (config.materialized === 'snapshot') {
    if (!config.unique_key) out.push({ message: 'a snapshot needs unique_key', hint: '{{config unique_key="id" strategy="timestamp" updated_at="updated_at"}}' });
    if (!config.strategy) out.push({ message: 'a snapshot needs strategy="timestamp" or strategy="check"', hint: '{{config unique_key="id" strategy="timestamp" updated_at="updated_at"}}' });
    if (config.strategy === 'timestamp' && !config.updated_at) out.push({ message: 'strategy timestamp needs updated_at', hint: 'updated_at="<column>"' });
    if (config.strategy === 'check' && !config.check_cols) out.push({ message: 'strategy check needs check_cols', hint: 'check_cols="all" or check_cols=(list "a" "b")' });
  }
  if (config.quarantine && config.materialized !== 'table' && config.materialized !== 'incremental') {
    out.push({ message: `quarantine needs a table or incremental model, not ${config.materialized}`, hint: 'set materialized="table"' });
  }
  return out;
}
