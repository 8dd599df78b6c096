// Compile stage 2: one manifest node per file. Each model, snapshot and
// singular test template is parsed and analysed, its config read from its
// three sources (etl.yml folder defaults < properties yml < {{config}}) and
// validated; seeds get theirs from the yml alone. Also the declared sources,
// and the check that every properties entry names a file. Nothing is
// resolved yet: depends_on stays empty until the next stage.

import { durationsAsText } from '../artifacts/manifest-json.js';
import os from 'node:os';
import path from 'node:path';
import { nameTooLong, type Dialect } from '../../adapters/dialect.js';
import { targetDatabase } from '../../adapters/index.js';
import { quarantineRelationName } from '../data-tests/engine/quarantine.js';
import { didYouMean, type Diagnostic } from '../errors.js';
import { mergeConfig, type Project, type ProjectSourceFile, type ResourceProperties } from '../project/load.js';
import type { NodeConfigInput } from '../project/schema.js';
import { analyzeTemplate, type TemplateAnalysis } from '../templates/analyze.js';
import { parseTemplate, type Ast } from '../templates/parse.js';
import { evaluateTemplateConfig, finalizeConfig, validateConfig, type StaticScope } from './config.js';
import { buildLoaders } from './loaders.js';
import { modelId, sourceId, type ColumnInfo, type ManifestNode, type ManifestSource, type ResourceType } from './manifest.js';

/** A node being compiled, with the template it came from (seeds have none). */
export interface PendingNode {
  node: ManifestNode;
  file: ProjectSourceFile;
  ast?: Ast;
  analysis?: TemplateAnalysis;
}

export interface ProjectNodes {
  /** unique_id -> node: seeds, models, snapshots and singular tests, enabled only. */
  pending: Map<string, PendingNode>;
  /** The names refs resolve against: models, seeds and snapshots (one namespace). */
  byName: Map<string, PendingNode>;
  singularTests: PendingNode[];
  /** Disabled nodes, as the manifest lists them. */
  disabled: Record<string, ManifestNode[]>;
  sources: Record<string, ManifestSource>;
  /** Loader nodes (loaders.ts), by unique_id. */
  loaders: Record<string, ManifestNode>;
}

export function parseNodes(project: Project, dialect: Dialect, scope: StaticScope, errors: Diagnostic[]): ProjectNodes {
  const pending = new Map<string, PendingNode>();
  const byName = new Map<string, PendingNode>();
  const disabled: Record<string, ManifestNode[]> = {};
  const singularTests: PendingNode[] = [];
  const addNode = (p: PendingNode) => {
    const other = byName.get(p.node.name);
    if (other) {
      errors.push({
        file: p.file.path,
        line: 1,
        message: `two ${p.node.resource_type === other.node.resource_type ? `${p.node.resource_type}s` : 'nodes'} are named "${p.node.name}": ${other.file.path} and ${p.file.path}`,
        hint: 'node names are file names and must be unique across models, seeds and snapshots; rename one of the files',
      });
      return;
    }
    byName.set(p.node.name, p);
    pending.set(p.node.unique_id, p);
  };

  for (const file of project.seeds) {
    const props = project.properties.seed.get(file.name);
    const config = finalizeConfig(mergeConfig(project.folderConfig('seed', file.path), (props?.config ?? {}) as NodeConfigInput), 'seed');
    config.materialized = 'seed';
    const node = baseNode(project, dialect, 'seed', file, config, props);
    for (const problem of relationNameProblems(dialect, node)) errors.push({ file: file.path, line: 1, ...problem });
    if (!config.enabled) (disabled[node.unique_id] ??= []).push(node);
    else addNode({ node, file });
  }

  for (const file of [...project.models, ...project.snapshots, ...project.singularTests]) {
    const kind = file.kind === 'test' ? 'test' : file.kind === 'snapshot' ? 'snapshot' : 'model';
    const parsed = parseTemplate(file.path, file.text);
    if ('error' in parsed) {
      errors.push(parsed.error);
      continue;
    }
    const analysis = analyzeTemplate(parsed.ast, file.path, errors);
    const props = kind === 'test' ? undefined : project.properties[kind].get(file.name);
    let input = mergeConfig(project.folderConfig(kind, file.path), (props?.config ?? {}) as NodeConfigInput);
    input = mergeConfig(input, evaluateTemplateConfig(analysis.configCalls, file.path, scope, errors, `${kind} "${file.name}"`));
    const config = finalizeConfig(input, kind === 'test' ? 'test' : kind === 'snapshot' ? 'snapshot' : 'view');
    if (kind === 'snapshot') config.materialized = 'snapshot';
    for (const problem of validateConfig(config)) errors.push({ file: file.path, line: 1, ...problem });
    const node = baseNode(project, dialect, kind, file, config, props);
    for (const problem of relationNameProblems(dialect, node)) errors.push({ file: file.path, line: 1, ...problem });
    if (!config.enabled) {
      (disabled[node.unique_id] ??= []).push(node);
      continue;
    }
    // Tests cannot be ref'd, so they stay out of the name namespace.
    if (kind === 'test') {
      const p = { node, file, ast: parsed.ast, analysis };
      singularTests.push(p);
      pending.set(node.unique_id, p);
    } else addNode({ node, file, ast: parsed.ast, analysis });
  }

  checkPropertiesEntries(project, errors);
  const sources = buildSources(project, dialect, errors);
  return { pending, byName, singularTests, disabled, sources, loaders: buildLoaders(project, dialect, sources, errors) };
}

/** Properties entries that describe nothing are typos, not documentation. */
function checkPropertiesEntries(project: Project, errors: Diagnostic[]): void {
  for (const kind of ['model', 'seed', 'snapshot'] as const) {
    const names = (kind === 'model' ? project.models : kind === 'seed' ? project.seeds : project.snapshots).map((m) => m.name);
    const known = new Set(names);
    for (const [name, props] of project.properties[kind]) {
      if (known.has(name)) continue;
      errors.push({
        ...props.declaredIn,
        message: `${kind}s entry "${name}" matches no ${kind} file`,
        hint: didYouMean(name, names) ?? `${kind}s are named after their files; create ${kind === 'model' ? `models/${name}.sql` : kind === 'seed' ? `seeds/${name}.csv` : `snapshots/${name}.sql`} or remove the entry`,
      });
    }
  }
}

/**
 * Names the engine would truncate (Postgres keeps 63 bytes): the schema, the
 * relation and, with quarantine, <alias>__quarantine. Refused here, before
 * anything runs; truncated, a table's final rename would land on a shorter
 * name and the next run fail with "already exists".
 */
function relationNameProblems(dialect: Dialect, node: ManifestNode): Array<{ message: string; hint: string }> {
  if (!node.relation_name) return [];
  const names = [node.schema, node.alias, ...(node.config.quarantine ? [quarantineRelationName(node)] : [])];
  return names.flatMap((name) => {
    const problem = nameTooLong(dialect, name);
    return problem ? [{ message: `${node.resource_type} "${node.name}": ${problem.replace(/; set a shorter alias$/, '')}`, hint: 'set a shorter alias (or schema) in its config, e.g. {{config alias="short_name"}}' }] : [];
  });
}

/** The database a server target connects to, as libpq chooses it: the target's (its URL's), PGDATABASE, else the user's name. */
function connectedDatabase(target: Project['target']): string {
  const named = targetDatabase(target);
  if (named) return named;
  const t = target as { url?: string; user?: string };
  let urlUser: string | undefined;
  try {
    urlUser = t.url ? decodeURIComponent(new URL(t.url).username) || undefined : undefined;
  } catch {
    urlUser = undefined;
  }
  return process.env.PGDATABASE ?? t.user ?? urlUser ?? process.env.PGUSER ?? os.userInfo().username;
}

/** dbt's rule: a custom schema is appended to the target schema. */
export function resolveSchema(targetSchema: string, custom: string | undefined): string {
  return custom ? `${targetSchema}_${custom}` : targetSchema;
}

function baseNode(
  project: Project,
  dialect: Dialect,
  kind: ResourceType,
  file: ProjectSourceFile,
  config: ManifestNode['config'],
  props: ResourceProperties | undefined,
): ManifestNode {
  const schema = resolveSchema(project.target.schema, config.schema);
  const alias = config.alias ?? file.name;
  const folderParts = file.path.split('/').slice(1, -1);
  const ephemeral = config.materialized === 'ephemeral' || kind === 'test';
  return {
    unique_id: modelId(project.name, kind, file.name),
    resource_type: kind,
    package_name: project.name,
    name: file.name,
    path: file.path,
    original_file_path: file.path,
    fqn: [project.name, ...folderParts, file.name],
    database: null,
    schema,
    alias,
    relation_name: ephemeral ? null : dialect.relation(schema, alias),
    raw_code: file.text,
    compiled_code: '',
    compiled_path: kind === 'seed' || config.materialized === 'ephemeral' ? null : path.posix.join(project.compiledDir, file.path),
    language: 'sql',
    depends_on: { nodes: [], macros: [] },
    refs: [],
    sources: [],
    config,
    tags: config.tags,
    description: props?.description ?? '',
    columns: columnsOf(props?.columns),
    meta: { ...(props?.meta ?? {}), ...config.meta },
    checksum: { name: 'sha256', checksum: file.checksum },
    patch_path: props ? props.declaredIn.file : null,
  };
}

function columnsOf(columns: ResourceProperties['columns']): Record<string, ColumnInfo> {
  const out: Record<string, ColumnInfo> = {};
  for (const c of columns ?? []) {
    out[c.name] = {
      name: c.name,
      description: c.description ?? '',
      data_type: c.data_type,
      meta: c.meta ?? {},
      tags: c.tags === undefined ? [] : Array.isArray(c.tags) ? c.tags : [c.tags],
      constraints: c.constraints,
    };
  }
  return out;
}

function buildSources(project: Project, dialect: Dialect, errors: Diagnostic[]): Record<string, ManifestSource> {
  const out: Record<string, ManifestSource> = {};
  for (const source of project.sources) {
    const database = source.database;
    if (database !== undefined && !dialect.readsOtherDatabases) {
      const connected = connectedDatabase(project.target);
      if (database !== connected) {
        errors.push(
          source.yaml.diagnostic(
            [...source.yamlPath, 'database'],
            `source "${source.name}" reads database "${database}", but target ${project.target.name} is connected to "${connected}", and ${dialect.name} reads only the database it is connected to`,
            `remove database: (or set it to "${connected}"), or point the target at "${database}"`,
          ),
        );
      }
    }
    const inOther = database !== undefined && dialect.readsOtherDatabases;
    for (const table of source.tables) {
      const id = sourceId(project.name, source.name, table.name);
      const schema = source.schema ?? source.name;
      const identifier = table.identifier ?? table.name;
      const freshness = table.freshness === null ? null : durationsAsText({ ...(source.freshness ?? {}), ...(table.freshness ?? {}) });
      out[id] = {
        unique_id: id,
        resource_type: 'source',
        package_name: project.name,
        name: table.name,
        source_name: source.name,
        identifier,
        schema,
        database: source.database ?? null,
        // In another (attached) database, the relation is named with it.
        relation_name: inOther ? `${dialect.quoteIdentifier(database)}.${dialect.relation(schema, identifier)}` : dialect.relation(schema, identifier),
        path: source.declaredIn.file,
        original_file_path: source.declaredIn.file,
        fqn: [project.name, source.name, table.name],
        description: table.description ?? '',
        source_description: source.description ?? '',
        // dbt's loader is the name of the tool; etl's own loaders name their type.
        loader: typeof source.loader === 'object' ? String(table.loader?.type ?? source.loader.type ?? '') : typeof table.loader === 'object' ? String(table.loader.type ?? '') : (source.loader ?? ''),
        loaded_at_field: table.loaded_at_field ?? freshness?.loaded_at_field ?? source.loaded_at_field ?? null,
        freshness: freshness && Object.keys(freshness).length ? freshness : null,
        columns: columnsOf(table.columns),
        meta: table.meta ?? source.meta ?? {},
        tags: [],
        ...(table.location ? { external: { location: table.location } } : {}),
      };
    }
  }
  return out;
}
