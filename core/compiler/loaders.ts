// Compile stage 2b: loader nodes. A source table with a `loader:` mapping (or
// a source whose `loader:` is a mapping: defaults for each of its tables)
// becomes a node of resource type `loader`, unique_id
// `loader.<project>.<source>.<table>`, that extracts from another system and
// loads the source's relation (its schema and identifier on the target). The
// models that read the source depend on it (resolve.ts). A `loader:` that is a
// string is dbt's: the name of an outside tool, and makes no node.

import { createHash } from 'node:crypto';
import type { Dialect } from '../../adapters/dialect.js';
import type { Diagnostic } from '../errors.js';
import type { Project } from '../project/load.js';
import { loaderSchema } from '../project/schema.js';
import { validate } from '../project/yaml.js';
import { loaderId, type LoaderSpec, type ManifestNode, type ManifestSource, type NodeConfig } from './manifest.js';

/** One node per loaded source table; sets `loaded_by` on those sources. */
export function buildLoaders(project: Project, dialect: Dialect, sources: Record<string, ManifestSource>, errors: Diagnostic[]): Record<string, ManifestNode> {
  const out: Record<string, ManifestNode> = {};
  for (const source of project.sources) {
    const defaults = typeof source.loader === 'object' ? source.loader : undefined;
    source.tables.forEach((table, i) => {
      if (!defaults && !table.loader) return;
      const tablePath = [...source.yamlPath, 'tables', i];
      const at = table.loader ? [...tablePath, 'loader'] : [...source.yamlPath, 'loader'];
      const merged: Record<string, unknown> = { ...(defaults ?? {}), ...(table.loader ?? {}) };
      const what = `the loader of source ${source.name}.${table.name}`;
      const parsed = validate(loaderSchema().resolved, merged, source.yaml, at, errors, what);
      if (!parsed) return;
      const line = source.yaml.locate(at, true).line;
      const problems: Array<{ key: string; message: string; hint: string }> = [];
      if (parsed.type === 'postgres' && parsed.table !== undefined && parsed.query !== undefined) {
        problems.push({ key: 'query', message: `${what} has both table: and query:`, hint: 'keep one: table: names a table at the source, query: is a select run there' });
      }
      const cdc = parsed.type === 'postgres' && parsed.incremental && 'mode' in parsed.incremental ? parsed.incremental : undefined;
      if (cdc && parsed.type === 'postgres' && parsed.query !== undefined) {
        problems.push({ key: 'query', message: `${what}: incremental mode cdc reads the changes of a table, not of a query`, hint: 'name the table: table: customers (and select columns in a model)' });
      }
      const cursorIncremental = parsed.type !== 'files' && parsed.incremental && !('mode' in parsed.incremental) ? parsed.incremental : undefined;
      if (cursorIncremental || cdc?.primary_key !== undefined) {
        const given = (cursorIncremental ?? cdc)!.primary_key!;
        const keys = Array.isArray(given) ? given : [given];
        if (keys.length === 0 || keys.some((k) => !k)) problems.push({ key: 'incremental', message: `${what}: incremental.primary_key is empty`, hint: 'name the column(s) that identify a row: primary_key: id' });
      }
      if (parsed.type === 'http' && parsed.incremental?.deletes === 'detect') {
        problems.push({ key: 'incremental', message: `${what}: incremental.deletes: detect needs every key at the source on each run, which an HTTP API does not list`, hint: 'remove deletes: (a full refresh drops what is gone), or load the table from Postgres' });
      }
      for (const p of problems) errors.push(source.yaml.diagnostic([...at, p.key], p.message, p.hint));
      if (problems.length) return;
      const src = sources[`source.${project.name}.${source.name}.${table.name}`];
      if (!src) return;
      const asList = (k: string | string[]) => (Array.isArray(k) ? k : [k]);
      const incrementalSpec = cursorIncremental ? { incremental: { ...cursorIncremental, deletes: undefined, primary_key: asList(cursorIncremental.primary_key) } } : {};
      const spec: LoaderSpec =
        parsed.type === 'http'
          ? {
              ...(parsed as Omit<typeof parsed, 'incremental' | 'on_schema_change' | 'full_refresh' | 'tags'>),
              ...incrementalSpec,
              source: `${source.name}.${table.name}`,
              declared_at: `${source.yaml.file}:${line}`,
            }
          : parsed.type === 'files'
          ? {
              type: 'files',
              path: parsed.path,
              ...(parsed.format ? { format: parsed.format } : {}),
              ...(parsed.max_rejected !== undefined ? { max_rejected: parsed.max_rejected } : {}),
              source: `${source.name}.${table.name}`,
              declared_at: `${source.yaml.file}:${line}`,
            }
          : {
        type: parsed.type,
        url: parsed.url,
        ...(parsed.query !== undefined ? { query: parsed.query } : { table: parsed.table ?? table.identifier ?? table.name }),
        ...(cursorIncremental
          ? {
              incremental: {
                cursor: cursorIncremental.cursor,
                primary_key: asList(cursorIncremental.primary_key),
                ...(cursorIncremental.lookback !== undefined ? { lookback: cursorIncremental.lookback } : {}),
                ...(cursorIncremental.deletes === 'detect' ? { deletes: 'detect' as const } : {}),
              },
            }
          : {}),
        ...(cdc ? { cdc: { ...(cdc.primary_key !== undefined ? { primary_key: asList(cdc.primary_key) } : {}), ...(cdc.slot ? { slot: cdc.slot } : {}) } } : {}),
        ...(parsed.sslmode ? { sslmode: parsed.sslmode } : {}),
        ...(parsed.sslrootcert ? { sslrootcert: parsed.sslrootcert } : {}),
        ...(parsed.connect_timeout !== undefined ? { connect_timeout: parsed.connect_timeout } : {}),
        ...(parsed.circuit_breaker !== undefined ? { circuit_breaker: parsed.circuit_breaker } : {}),
        ...(parsed.retries !== undefined ? { retries: parsed.retries } : {}),
        ...(parsed.retry_backoff !== undefined ? { retry_backoff: parsed.retry_backoff as LoaderSpec['retry_backoff'] } : {}),
        source: `${source.name}.${table.name}`,
        declared_at: `${source.yaml.file}:${line}`,
      };
      const tags = parsed.tags === undefined ? [] : Array.isArray(parsed.tags) ? parsed.tags : [parsed.tags];
      const config: NodeConfig = {
        materialized: 'loader',
        enabled: true,
        tags,
        pre_hook: [],
        post_hook: [],
        retries: 0,
        meta: {},
        loader: spec,
        ...(parsed.on_schema_change ? { on_schema_change: parsed.on_schema_change } : {}),
        ...(parsed.full_refresh !== undefined ? { full_refresh: parsed.full_refresh } : {}),
      };
      const id = loaderId(project.name, source.name, table.name);
      src.loaded_by = id;
      const sql = spec.type === 'files' ? `-- files: ${spec.path}` : spec.type === 'http' ? `-- http: ${spec.url}` : (spec.query ?? `select * from ${dialect.quoteIdentifier(spec.table!)}`);
      out[id] = {
        unique_id: id,
        resource_type: 'loader',
        package_name: project.name,
        name: `${source.name}.${table.name}`,
        path: source.yaml.file,
        original_file_path: source.yaml.file,
        fqn: [project.name, source.name, table.name],
        database: null,
        schema: src.schema,
        alias: src.identifier,
        relation_name: src.relation_name,
        raw_code: sql,
        compiled_code: sql,
        compiled_path: null,
        language: 'sql',
        depends_on: { nodes: [], macros: [] },
        refs: [],
        sources: [[source.name, table.name]],
        config,
        tags,
        description: src.description,
        columns: src.columns,
        meta: {},
        checksum: { name: 'sha256', checksum: createHash('sha256').update(JSON.stringify({ ...spec, declared_at: undefined })).digest('hex') },
        patch_path: source.yaml.file,
      };
    });
  }
  return out;
}
