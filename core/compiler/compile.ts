// The compiler: Project in, Manifest out. Parses every template once,
// analyses dependencies and config from the syntax trees, checks refs,
// sources, helpers and cycles (collecting every error with file:line), then
// renders each node by walking its tree. Touches no database.

import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { dialectFor, type Dialect } from '../../adapters/dialect.js';
import { Diagnostics, didYouMean } from '../errors.js';
import type { Project, ProjectSourceFile, ResourceProperties } from '../project/load.js';
import { mergeConfig } from '../project/load.js';
import type { NodeConfigInput } from '../project/schema.js';
import { analyzeTemplate, type TemplateAnalysis } from '../templates/analyze.js';
import { BUILTIN_HELPER_NAMES, builtinHelpers, loadMacroHelpers, ROOT_VARIABLES, type HelperScope } from '../templates/helpers.js';
import { parseTemplate, type Ast } from '../templates/parse.js';
import { renderTemplate, TemplateRenderError, type HelperFn } from '../templates/render.js';
import { buildGraph, findCycle } from '../graph/graph.js';
import { evaluateTemplateConfig, finalizeConfig } from './config.js';
import { ephemeralCteName, injectCtes } from './ephemeral.js';
import { ETL_VERSION } from './version.js';
import { compileGenericTests, type CustomGenericTest } from '../data-tests/compile-tests.js';
import { BUILTIN_TESTS } from '../data-tests/generic.js';
import { compileUnitTests } from '../data-tests/unit-tests.js';
import { macroEntry, modelId, sourceId, type ColumnInfo, type Manifest, type ManifestNode, type ManifestSource, type ResourceType } from './manifest.js';


interface PendingNode {
  node: ManifestNode;
  file: ProjectSourceFile;
  ast?: Ast;
  analysis?: TemplateAnalysis;
}

export interface CompileOutput {
  manifest: Manifest;
  /** Environment variables read by templates, for the compile cache key. */
  envRead: string[];
}

/** Compiles a loaded project into a manifest; throws ProjectError with every problem found. */
export async function compileProject(project: Project, env: NodeJS.ProcessEnv = process.env): Promise<CompileOutput> {
  const diagnostics = new Diagnostics();
  const errors = diagnostics.list;
  const dialect = dialectFor(project.target.type);
  const envRead = new Set<string>();
  const staticScope = { vars: project.vars, env, onEnvRead: (n: string) => envRead.add(n) };

  // Partials (macros/**/*.hbs), parsed once and analysed for refs of their own.
  const partials = new Map<string, { ast: Ast; analysis: TemplateAnalysis; path: string }>();
  for (const p of project.partials) {
    const parsed = parseTemplate(p.path, p.text);
    if ('error' in parsed) {
      errors.push(parsed.error);
      continue;
    }
    const other = partials.get(p.name);
    if (other) {
      errors.push({ file: p.path, message: `partial "${p.name}" is defined twice`, hint: `also in ${other.path}; rename one of the files` });
      continue;
    }
    partials.set(p.name, { ast: parsed.ast, analysis: analyzeTemplate(parsed.ast, p.path, errors), path: p.path });
  }

  // Custom generic tests (macros/tests/*.sql): rendered per use with {model, column_name, ...args}.
  const customTestDefs = new Map<string, { ast: Ast; analysis: TemplateAnalysis; path: string }>();
  for (const t of project.genericTests) {
    const parsed = parseTemplate(t.path, t.text);
    if ('error' in parsed) {
      errors.push(parsed.error);
      continue;
    }
    if (customTestDefs.has(t.name) || BUILTIN_TESTS[t.name]) {
      errors.push({ file: t.path, message: `generic test "${t.name}" is defined twice`, hint: BUILTIN_TESTS[t.name] ? 'a built-in test has that name; rename the file' : `also in ${customTestDefs.get(t.name)!.path}` });
      continue;
    }
    customTestDefs.set(t.name, { ast: parsed.ast, analysis: analyzeTemplate(parsed.ast, t.path, errors), path: t.path });
  }

  let macroHelpers = new Map<string, { fn: HelperFn; path: string }>();
  if (project.helperModules.length) {
    try {
      macroHelpers = await loadMacroHelpers(project.helperModules);
    } catch (err) {
      const e = err as Error & { file?: string; line?: number; col?: number };
      errors.push({ file: e.file, line: e.line, col: e.col, message: `cannot load macros: ${e.message}` });
    }
  }

  // Nodes: seeds, then models. Names are one namespace across resource types.
  const pending = new Map<string, PendingNode>();
  const byName = new Map<string, PendingNode>();
  const disabled: Record<string, ManifestNode[]> = {};
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
    if (!config.enabled) (disabled[node.unique_id] ??= []).push(node);
    else addNode({ node, file });
  }

  const singularTests: PendingNode[] = [];
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
    input = mergeConfig(input, evaluateTemplateConfig(analysis.configCalls, file.path, staticScope, errors, `${kind} "${file.name}"`));
    const config = finalizeConfig(input, kind === 'test' ? 'test' : kind === 'snapshot' ? 'snapshot' : 'view');
    if (kind === 'snapshot') config.materialized = 'snapshot';
    for (const problem of configProblems(config)) errors.push({ file: file.path, line: 1, ...problem });
    const node = baseNode(project, dialect, kind, file, config, props);
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

  // Properties entries that describe nothing are typos, not documentation.
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

  const sources = buildSources(project, dialect);
  const helperNames = new Set<string>([...BUILTIN_HELPER_NAMES, ...macroHelpers.keys()]);
  for (const [name, h] of macroHelpers) {
    if ((BUILTIN_HELPER_NAMES as readonly string[]).includes(name)) {
      errors.push({ file: h.path, message: `macro helper "${name}" shadows a built-in helper`, hint: 'rename the export' });
    }
  }

  // Resolve refs, sources, helpers and partials, per node (partials' refs count too).
  const disabledNames = new Map(Object.values(disabled).flat().map((n) => [n.name, n]));
  for (const p of pending.values()) {
    if (!p.analysis) continue;
    const deps = new Set<string>();
    const visit = (analysis: TemplateAnalysis, file: string, seen: Set<string>, isPartial = false) => {
      for (const ref of analysis.refs) {
        const target = byName.get(ref.name);
        if (!target) {
          const off = disabledNames.get(ref.name);
          errors.push({
            file,
            line: ref.line,
            col: ref.col,
            message: off ? `ref "${ref.name}": that ${off.resource_type} is disabled` : `unknown ref "${ref.name}"`,
            hint: off ? `enable ${off.original_file_path} or remove the ref` : didYouMean(ref.name, byName.keys()) ?? 'refs name a model, seed or snapshot by its file name',
          });
          continue;
        }
        if (target === p) {
          errors.push({ file, line: ref.line, col: ref.col, message: `${p.node.name} refs itself`, hint: 'use {{this}} to refer to the relation being built' });
          continue;
        }
        deps.add(target.node.unique_id);
        if (!p.node.refs.some((r) => r.name === ref.name)) p.node.refs.push({ name: ref.name });
      }
      for (const src of analysis.sources) {
        const id = sourceId(project.name, src.source, src.table);
        if (!sources[id]) {
          const sameSource = Object.values(sources).filter((s) => s.source_name === src.source);
          const hint = sameSource.length
            ? didYouMean(src.table, sameSource.map((s) => s.name)) ?? `tables of source "${src.source}": ${sameSource.map((s) => s.name).join(', ')}`
            : didYouMean(src.source, new Set(Object.values(sources).map((s) => s.source_name))) ?? 'declare it under sources: in a models/*.yml file';
          errors.push({ file, line: src.line, col: src.col, message: `unknown source "${src.source}.${src.table}"`, hint });
          continue;
        }
        deps.add(id);
        if (!p.node.sources.some(([a, b]) => a === src.source && b === src.table)) p.node.sources.push([src.source, src.table]);
      }
      for (const h of analysis.helpers) {
        if (!helperNames.has(h.name)) {
          errors.push({ file, line: h.line, col: h.col, message: `unknown helper "${h.name}"`, hint: didYouMean(h.name, helperNames) ?? 'project helpers are the named exports of macros/**/*.{js,mjs,ts}' });
        }
      }
      // A partial's bare names come from its caller's hash, checked when rendered.
      for (const b of isPartial ? [] : analysis.bareNames) {
        if (!helperNames.has(b.name) && !(ROOT_VARIABLES as readonly string[]).includes(b.name)) {
          errors.push({
            file,
            line: b.line,
            col: b.col,
            message: `unknown helper or variable "${b.name}"`,
            hint: didYouMean(b.name, [...helperNames, ...ROOT_VARIABLES]) ?? `for a project var write {{var "${b.name}"}}`,
          });
        }
      }
      for (const part of analysis.partials) {
        if (part.name === '@partial-block') continue;
        const def = partials.get(part.name);
        if (!def) {
          errors.push({ file, line: part.line, col: part.col, message: `unknown partial "${part.name}"`, hint: didYouMean(part.name, partials.keys()) ?? 'partials are macros/**/*.hbs files' });
          continue;
        }
        if (!seen.has(part.name)) {
          seen.add(part.name);
          if (!p.node.depends_on.macros.includes(`macro.${project.name}.${part.name}`)) p.node.depends_on.macros.push(`macro.${project.name}.${part.name}`);
          visit(def.analysis, def.path, seen, true);
        }
      }
    };
    visit(p.analysis, p.file.path, new Set());
    p.node.depends_on.nodes = [...deps];
  }

  // Cycles, listed in order with the file:line of each edge. Checked even when
  // other errors were found: the edges of resolved refs are real either way.
  {
    const graph = buildGraph(pending.keys(), (id) => pending.get(id)!.node.depends_on.nodes);
    const cycle = findCycle(graph);
    if (cycle) {
      const names = cycle.map((id) => pending.get(id)!.node.name);
      const first = pending.get(cycle[0]!)!;
      const refLine = first.analysis?.refs.find((r) => r.name === names[1 % names.length]);
      errors.push({
        file: first.file.path,
        line: refLine?.line,
        col: refLine?.col,
        message: `dependency cycle: ${[...names, names[0]].join(' -> ')}`,
        hint: `each model in the cycle refs the next: ${cycle.map((id) => pending.get(id)!.file.path).join(', ')}; remove one of the refs`,
      });
    }
  }
  diagnostics.throwIfAny();

  // Render every model (both variants for incremental ones).
  const helpers = new Map<string, HelperFn>();
  const scope: HelperScope = {
    resolveRef: (name) => {
      const n = byName.get(name)!.node;
      return n.config.materialized === 'ephemeral' ? dialect.quoteIdentifier(ephemeralCteName(n.name)) : n.relation_name!;
    },
    resolveSource: (source, table) => sources[sourceId(project.name, source, table)]!.relation_name,
    vars: project.vars,
    env,
    onEnvRead: (n) => envRead.add(n),
  };
  for (const [name, fn] of builtinHelpers(scope)) helpers.set(name, fn);
  for (const [name, h] of macroHelpers) if (!helpers.has(name)) helpers.set(name, h.fn);
  const partialAsts = new Map([...partials].map(([k, v]) => [k, v.ast]));
  const partialFiles = new Map([...partials].map(([k, v]) => [k, v.path]));
  const target = { name: project.targetName, type: project.target.type, schema: project.target.schema, threads: project.target.threads };
  const rendered = new Map<string, { full: string; incremental?: string }>();
  const rootContext = (node: ManifestNode): Record<string, unknown> => ({
    is_incremental: false,
    target,
    model: { name: node.name, schema: node.schema, alias: node.alias, unique_id: node.unique_id, config: node.config },
    // Microbatch runs substitute these per batch; see the incremental strategies.
    batch_start: '__ETL_BATCH_START__',
    batch_end: '__ETL_BATCH_END__',
  });
  for (const p of pending.values()) {
    if (!p.ast) continue;
    const node = p.node;
    const renderOnce = (isIncremental: boolean) =>
      renderTemplate(
        p.ast!,
        { ...rootContext(node), is_incremental: isIncremental },
        { file: p.file.path, helpers, partials: partialAsts, partialFiles, thisRelation: node.relation_name ?? dialect.quoteIdentifier(ephemeralCteName(node.name)) },
      );
    try {
      const full = renderOnce(false);
      const incremental = node.config.materialized === 'incremental' ? renderOnce(true) : undefined;
      rendered.set(node.unique_id, { full, incremental });
    } catch (err) {
      if (err instanceof TemplateRenderError) {
        errors.push({ file: err.file, line: err.line, col: err.col, message: err.message, hint: err.hint });
      } else throw err;
    }
  }
  diagnostics.throwIfAny();

  // Inline ephemeral ancestors as CTEs, in dependency order.
  const ephemeralChain = (id: string, out: string[], seen: Set<string>) => {
    for (const parent of pending.get(id)!.node.depends_on.nodes) {
      const pn = pending.get(parent);
      if (!pn || pn.node.config.materialized !== 'ephemeral' || seen.has(parent)) continue;
      seen.add(parent);
      ephemeralChain(parent, out, seen);
      out.push(parent);
    }
    return out;
  };
  for (const p of pending.values()) {
    const r = rendered.get(p.node.unique_id);
    if (!r) continue;
    const chain = ephemeralChain(p.node.unique_id, [], new Set());
    const ctes = chain.map((id) => ({ name: dialect.quoteIdentifier(ephemeralCteName(pending.get(id)!.node.name)), sql: rendered.get(id)!.full }));
    p.node.compiled_code = injectCtes(r.full, ctes);
    if (r.incremental !== undefined) p.node.compiled_incremental_code = injectCtes(r.incremental, ctes);
  }

  // Generic tests from the yml files, now that every relation is known.
  const customTests = new Map<string, CustomGenericTest>();
  for (const [name, def] of customTestDefs) {
    const dependsOn: string[] = [];
    for (const ref of def.analysis.refs) {
      const target = byName.get(ref.name);
      if (!target) errors.push({ file: def.path, line: ref.line, col: ref.col, message: `unknown ref "${ref.name}"`, hint: didYouMean(ref.name, byName.keys()) });
      else dependsOn.push(target.node.unique_id);
    }
    customTests.set(name, {
      name,
      path: def.path,
      dependsOn,
      render: (context) => renderTemplate(def.ast, { ...context, target }, { file: def.path, helpers, partials: partialAsts, thisRelation: String(context.model) }),
    });
  }
  const testNodes = compileGenericTests({
    project,
    dialect,
    nodesByName: new Map([...byName].map(([k, v]) => [k, v.node])),
    sources,
    customTests,
    errors,
  });
  const unitTestNodes = compileUnitTests({
    project,
    dialect,
    nodesByName: new Map([...byName].map(([k, v]) => [k, v.node])),
    sources,
    errors,
    renderModel: (model, resolveRef, resolveSource, opts) => {
      const p = pending.get(model.unique_id)!;
      const unitHelpers = new Map(helpers);
      for (const [name, fn] of builtinHelpers({ ...scope, resolveRef, resolveSource, vars: { ...project.vars, ...opts.vars } })) unitHelpers.set(name, fn);
      return renderTemplate(
        p.ast!,
        { ...rootContext(model), is_incremental: opts.isIncremental },
        { file: p.file.path, helpers: unitHelpers, partials: partialAsts, partialFiles, thisRelation: model.relation_name ?? '' },
      );
    },
  });
  testNodes.push(...unitTestNodes);
  for (const t of singularTests) {
    const clash = testNodes.find((g) => g.name === t.node.name);
    if (clash) errors.push({ file: t.file.path, message: `singular test "${t.node.name}" has the name of a generic test declared in ${clash.original_file_path}`, hint: 'rename the file, or give the generic test a name: in its config' });
    // A singular test about exactly one node blocks that node's children when it fails.
    t.node.attached_node = t.node.depends_on.nodes.length === 1 ? t.node.depends_on.nodes[0]! : null;
  }
  // A quarantined model evaluates its row-level tests while it is built, so it
  // also depends on what those tests read (the `to` of a relationships test).
  for (const t of testNodes) {
    const model = t.attached_node ? pending.get(t.attached_node)?.node : undefined;
    if (!model?.config.quarantine || !t.row_condition) continue;
    for (const dep of t.depends_on.nodes) {
      if (dep !== model.unique_id && !model.depends_on.nodes.includes(dep)) model.depends_on.nodes.push(dep);
    }
  }
  const quarantineCycle = findCycle(buildGraph(pending.keys(), (id) => pending.get(id)!.node.depends_on.nodes));
  if (quarantineCycle) {
    const names = quarantineCycle.map((id) => pending.get(id)!.node.name);
    errors.push({
      file: pending.get(quarantineCycle[0]!)!.file.path,
      message: `dependency cycle through a quarantined model's relationships test: ${[...names, names[0]].join(' -> ')}`,
      hint: 'a quarantine: true model must be built after the models its relationships tests point to',
    });
  }
  diagnostics.throwIfAny();

  const nodes: Record<string, ManifestNode> = {};
  for (const p of pending.values()) nodes[p.node.unique_id] = p.node;
  for (const t of testNodes) nodes[t.unique_id] = t;
  const graph = buildGraph([...Object.keys(nodes), ...Object.keys(sources)], (id) => nodes[id]?.depends_on.nodes ?? []);

  const manifest: Manifest = {
    metadata: {
      dbt_schema_version: 'https://schemas.getdbt.com/dbt/manifest/v12.json',
      etl_version: ETL_VERSION,
      generated_at: new Date().toISOString(),
      invocation_id: randomUUID(),
      project_name: project.name,
      project_root: project.root,
      target_name: project.targetName,
      adapter_type: project.target.type,
      target_schema: project.target.schema,
      fingerprint: project.fingerprint,
    },
    nodes,
    sources,
    macros: Object.fromEntries(
      [...project.partials.map((p) => macroEntry(project.name, p.name, p.path, p.text)), ...project.genericTests.map((t) => macroEntry(project.name, `test_${t.name}`, t.path, t.text))].map((m) => [m.unique_id, m]),
    ),
    parent_map: Object.fromEntries(graph.parents),
    child_map: Object.fromEntries(graph.children),
    exposures: {},
    metrics: {},
    groups: {},
    selectors: {},
    disabled,
    docs: {},
  };
  return { manifest, envRead: [...envRead].sort() };
}

/** Combinations of config keys that cannot work, found before anything runs. */
function configProblems(config: ManifestNode['config']): Array<{ message: string; hint?: string }> {
  const out: Array<{ message: string; hint?: string }> = [];
  const strategy = config.incremental_strategy;
  if (config.materialized === 'incremental') {
    if ((strategy === 'merge' || strategy === 'delete+insert') && !config.unique_key) {
      out.push({ message: `incremental_strategy ${strategy} needs unique_key`, hint: `{{config materialized="incremental" incremental_strategy="${strategy}" unique_key="id"}}` });
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

function buildSources(project: Project, dialect: Dialect): Record<string, ManifestSource> {
  const out: Record<string, ManifestSource> = {};
  for (const source of project.sources) {
    for (const table of source.tables) {
      const id = sourceId(project.name, source.name, table.name);
      const schema = source.schema ?? source.name;
      const identifier = table.identifier ?? table.name;
      const freshness = table.freshness === null ? null : { ...(source.freshness ?? {}), ...(table.freshness ?? {}) };
      out[id] = {
        unique_id: id,
        resource_type: 'source',
        package_name: project.name,
        name: table.name,
        source_name: source.name,
        identifier,
        schema,
        database: source.database ?? null,
        relation_name: dialect.relation(schema, identifier),
        path: source.declaredIn.file,
        original_file_path: source.declaredIn.file,
        fqn: [project.name, source.name, table.name],
        description: table.description ?? '',
        source_description: source.description ?? '',
        loader: source.loader ?? '',
        loaded_at_field: table.loaded_at_field ?? freshness?.loaded_at_field ?? source.loaded_at_field ?? null,
        freshness: freshness && Object.keys(freshness).length ? freshness : null,
        columns: columnsOf(table.columns),
        meta: table.meta ?? source.meta ?? {},
        tags: [],
      };
    }
  }
  return out;
}
