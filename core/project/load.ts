// Project loading: finds and reads every file of a project, validates etl.yml
// and the properties yml files, resolves the target, and computes folder-level
// config. Knows nothing about templates, graphs or engines: its output is a
// plain Project that the compiler turns into a manifest.

import { readFileSync, existsSync } from 'node:fs';
import { createHash, hash } from 'node:crypto';
import path from 'node:path';
import { checksumOf, filesUnder, readProjectText, readStamps, type FileStamp } from './files.js';
import { type Diagnostic, Diagnostics, ProjectError, didYouMean } from '../errors.js';
import { describeValueIssue, readYaml, validate, type YamlFile, type YamlPath } from './yaml.js';
import {
  NODE_CONFIG_KEYS,
  nodeConfigSchema,
  nodeConfigShape,
  projectFileSchema,
  propertiesSchemas,
  targetSchema,
  type NodeConfigInput,
  type ProjectFile,
  type ResourcePropertiesInput,
  type SourceInput,
  type TargetInput,
  type UnitTestInput,
} from './schema.js';
import { unknownColumnType } from './column-types.js';
import { declaredSecrets, interpolateConfigString, type Secrets } from './secrets.js';
import { dialectFor, type Dialect } from '../../adapters/dialect.js';
import { readAlerts, readJobs, type AlertConfig, type JobConfig } from './orchestration.js';

export type ResourceKind = 'model' | 'seed' | 'snapshot' | 'test';

/** A SQL or CSV file of the project. */
export interface ProjectSourceFile {
  kind: ResourceKind;
  /** File name without extension: the node name. */
  name: string;
  /** Path relative to the project root, with forward slashes. */
  path: string;
  absPath: string;
  /** Contents for SQL files; CSV seeds are read by the engine, not here. */
  text: string;
  checksum: string;
}

export interface ResourceProperties extends ResourcePropertiesInput {
  /** Where the entry was declared, for error messages. */
  declaredIn: { file: string; line: number; col: number };
  /** The yml file and the entry's path in it, to locate nested keys (tests) in errors. */
  yaml: YamlFile;
  yamlPath: YamlPath;
}

export interface SourceDefinition extends SourceInput {
  declaredIn: { file: string; line: number; col: number };
  yaml: YamlFile;
  yamlPath: YamlPath;
}

export interface UnitTestDefinition extends UnitTestInput {
  declaredIn: { file: string; line: number; col: number };
  yaml: YamlFile;
  yamlPath: YamlPath;
}

export type TargetConfig = TargetInput & { name: string; schema: string; threads: number };

/** What scanProject reads: enough to run from a cached manifest. */
export interface ProjectScan {
  root: string;
  name: string;
  file: ProjectFile;
  configYaml: YamlFile;
  targetName: string;
  target: TargetConfig;
  vars: Record<string, unknown>;
  targetPath: string;
  /** Where compiled SQL goes, relative to the root with forward slashes: target/compiled/<project>. */
  compiledDir: string;
  /** Hash of every file read, the target and the vars: the compile cache key. */
  fingerprint: string;
  secrets: Secrets;
  /** etl.yml `jobs:` (what `etl schedule` runs). */
  jobs: JobConfig[];
  /** etl.yml `alerts:`, their settings rendered (core/alerts delivers them). */
  alerts: AlertConfig[];
  files: {
    models: ProjectSourceFile[];
    seeds: ProjectSourceFile[];
    snapshots: ProjectSourceFile[];
    singularTests: ProjectSourceFile[];
    partials: Array<{ name: string; path: string; text: string }>;
    genericTests: Array<{ name: string; path: string; text: string }>;
    helperModules: Array<{ path: string; absPath: string }>;
    ymlFiles: Array<{ rel: string; text: string }>;
  };
  /** Checksums of large files by (size, mtime), to save in target/ when they changed (see files.ts). */
  fileStamps?: Record<string, FileStamp>;
}

export interface Project extends ProjectScan {
  models: ProjectSourceFile[];
  seeds: ProjectSourceFile[];
  snapshots: ProjectSourceFile[];
  singularTests: ProjectSourceFile[];
  properties: Record<'model' | 'seed' | 'snapshot', Map<string, ResourceProperties>>;
  sources: SourceDefinition[];
  unitTests: UnitTestDefinition[];
  partials: Array<{ name: string; path: string; text: string }>;
  /** Custom generic tests: macros/tests/*.sql, named after the file. */
  genericTests: Array<{ name: string; path: string; text: string }>;
  helperModules: Array<{ path: string; absPath: string }>;
  /** Config from etl.yml folder defaults for a file (deepest folder wins). */
  folderConfig(kind: ResourceKind, relPath: string): NodeConfigInput;
}

export interface LoadOptions {
  target?: string;
  /** `--vars` as parsed JSON/YAML. */
  vars?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
}

const PATH_DEFAULTS = {
  model: 'models',
  seed: 'seeds',
  snapshot: 'snapshots',
  test: 'tests',
  macro: 'macros',
} as const;

function sha256(text: string): string {
  return hash('sha256', text, 'hex');
}

function toPosix(p: string): string {
  return p.split(path.sep).join('/');
}

/** Loads and validates a project; throws ProjectError with every problem found. */
export function loadProject(projectDir: string, options: LoadOptions = {}): Project {
  return parseProject(scanProject(projectDir, options));
}

/**
 * The cheap half of loading: etl.yml and the target validated, every file
 * read and hashed, nothing else parsed. When the fingerprint matches the last
 * compile, the manifest is reused and the yml files are never parsed.
 */
export function scanProject(projectDir: string, options: LoadOptions = {}): ProjectScan {
  const root = path.resolve(projectDir);
  const configPath = path.join(root, 'etl.yml');
  if (!existsSync(configPath)) {
    throw new ProjectError([
      {
        message: `no etl.yml in ${root}`,
        hint: 'run etl from a project folder, pass --project-dir, or create a project with `etl init <dir>`',
      },
    ]);
  }
  const diagnostics = new Diagnostics();
  const errors: Diagnostic[] = diagnostics.list;
  const { text: configText, invalidAt: configInvalid } = readProjectText(configPath);
  if (configInvalid) throw new ProjectError([notUtf8('etl.yml', configInvalid)]);
  const configYaml = readYaml('etl.yml', configText);
  if (!('data' in configYaml)) throw new ProjectError([configYaml]);
  const file = validate(projectFileSchema, configYaml.data, configYaml, [], errors, 'etl.yml');
  if (!file) diagnostics.throwIfAny();
  const projectFile = file!;

  const env = options.env ?? process.env;
  const vars = { ...(projectFile.vars ?? {}), ...(options.vars ?? {}) };
  const { targetName, target, secrets } = resolveTarget(projectFile, configYaml, options.target, vars, env, errors);
  const jobs = projectFile.jobs ? readJobs(projectFile.jobs, configYaml, errors) : [];
  const alerts = projectFile.alerts ? readAlerts(projectFile.alerts, configYaml, vars, env, secrets, errors) : [];

  const hash = createHash('sha256');
  hash.update(configText);
  const under = new Map<string, string[]>();
  /** Files of a kind's folders whose path (relative to the folder) passes `match`. */
  const listFiles = (kind: keyof typeof PATH_DEFAULTS, match: (rel: string) => boolean) => {
    const key = `${kind}-paths` as const;
    const dirs = (projectFile as Record<string, unknown>)[key] as string[] | undefined;
    const out: string[] = [];
    for (const dir of dirs ?? [PATH_DEFAULTS[kind]]) {
      let files = under.get(dir);
      if (!files) under.set(dir, (files = filesUnder(path.join(root, dir))));
      for (const m of files) if (match(m)) out.push(`${dir}/${m}`);
    }
    return out;
  };
  const ext = (...exts: string[]) => (rel: string) => exts.some((e) => rel.endsWith(e));
  const readSql = (kind: ResourceKind, rel: string): ProjectSourceFile => {
    const absPath = path.join(root, rel);
    const { text, invalidAt } = readProjectText(absPath);
    if (invalidAt) errors.push(notUtf8(toPosix(rel), invalidAt));
    hash.update(rel).update('\0').update(text).update('\0');
    const checksum = sha256(text);
    return { kind, name: path.basename(rel).replace(/\.[^.]+$/, ''), path: toPosix(rel), absPath, text, checksum };
  };
  const targetPath = path.join(root, projectFile['target-path'] ?? 'target');
  const fileStamps = readStamps(targetPath);
  let fileStampsChanged = false;
  const readSeed = (rel: string): ProjectSourceFile => {
    const absPath = path.join(root, rel);
    // A seed's checksum is of its contents, so state:modified sees data edits.
    const { checksum, changed } = checksumOf(absPath, toPosix(rel), fileStamps);
    fileStampsChanged ||= changed;
    hash.update(rel).update('\0').update(checksum).update('\0');
    return { kind: 'seed', name: path.basename(rel).replace(/\.csv$/i, ''), path: toPosix(rel), absPath, text: '', checksum };
  };

  const models = listFiles('model', ext('.sql')).map((p) => readSql('model', p));
  const snapshots = listFiles('snapshot', ext('.sql')).map((p) => readSql('snapshot', p));
  const singularTests = listFiles('test', ext('.sql')).map((p) => readSql('test', p));
  const seeds = listFiles('seed', ext('.csv')).map(readSeed);
  const partials = listFiles('macro', ext('.hbs')).map((p) => {
    const f = readSql('model', p);
    return { name: f.name, path: f.path, text: f.text };
  });
  const genericTests = listFiles('macro', (rel) => rel.startsWith('tests/') && rel.endsWith('.sql')).map((p) => {
    const f = readSql('test', p);
    return { name: f.name, path: f.path, text: f.text };
  });
  const helperModules = listFiles('macro', ext('.js', '.mjs', '.ts')).map((p) => {
    const f = readSql('model', p);
    return { path: f.path, absPath: f.absPath };
  });

  const ymlFiles = [
    ...listFiles('model', ext('.yml', '.yaml')),
    ...listFiles('seed', ext('.yml', '.yaml')),
    ...listFiles('snapshot', ext('.yml', '.yaml')),
  ].map((rel) => {
    const { text, invalidAt } = readProjectText(path.join(root, rel));
    if (invalidAt) errors.push(notUtf8(toPosix(rel), invalidAt));
    hash.update(rel).update('\0').update(text).update('\0');
    return { rel, text };
  });
  for (const f of [...models, ...snapshots, ...singularTests]) {
    if (isEmptyTemplate(f.text)) {
      errors.push({
        file: f.path,
        line: 1,
        message: `${f.kind} file holds no SQL${f.text.trim() ? ' (only comments or {{config}})' : ' (it is empty)'}`,
        hint: f.kind === 'test' ? 'write a query that returns the failing rows, or delete the file' : 'write the select statement, or delete the file',
      });
    }
  }
  diagnostics.throwIfAny();
  hash.update(JSON.stringify({ targetName, target, vars }));
  return {
    root,
    name: projectFile.name,
    file: projectFile,
    configYaml,
    targetName,
    target: target!,
    vars,
    targetPath,
    compiledDir: path.posix.join(toPosix(projectFile['target-path'] ?? 'target'), 'compiled', projectFile.name),
    fingerprint: hash.digest('hex'),
    secrets,
    jobs,
    alerts,
    files: { models, seeds, snapshots, singularTests, partials, genericTests, helperModules, ymlFiles },
    fileStamps: fileStampsChanged ? fileStamps : undefined,
  };
}

function notUtf8(file: string, at: { line: number; col: number }): Diagnostic {
  return { file, ...at, message: 'the file is not valid UTF-8', hint: 'save it as UTF-8 (the first byte that is not is here)' };
}

/** True when a template holds nothing but whitespace, SQL and Handlebars comments and {{config}} calls. */
export function isEmptyTemplate(text: string): boolean {
  const first = /\S/.exec(text);
  // Most models start with their SQL: nothing to strip.
  if (first && !'-/{'.includes(first[0])) return false;
  const stripped = text
    .replace(/\{\{!--[\s\S]*?--\}\}|\{\{![\s\S]*?\}\}/g, '')
    .replace(/\{\{~?\s*config\b[^}]*~?\}\}/g, '')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/--[^\n]*/g, '');
  return stripped.trim() === '';
}

/** The expensive half: properties yml files parsed and validated, folder config built. */
export function parseProject(scan: ProjectScan): Project {
  const { file: projectFile, configYaml } = scan;
  const { models, seeds, snapshots, singularTests, partials, genericTests, helperModules, ymlFiles } = scan.files;
  const diagnostics = new Diagnostics();
  const errors: Diagnostic[] = diagnostics.list;
  const properties: Project['properties'] = { model: new Map(), seed: new Map(), snapshot: new Map() };
  const sources: SourceDefinition[] = [];
  const unitTests: UnitTestDefinition[] = [];
  for (const { rel, text } of ymlFiles) {
    const yaml = readYaml(rel, text);
    if (!('data' in yaml)) {
      errors.push(yaml);
      continue;
    }
    const parsed = validate(propertiesSchemas().propertiesFileSchema, yaml.data, yaml, [], errors, rel);
    if (!parsed) continue;
    for (const kind of ['model', 'seed', 'snapshot'] as const) {
      const entries = parsed[`${kind}s`] ?? [];
      entries.forEach((entry, i) => {
        const at: YamlPath = [`${kind}s`, i];
        const existing = properties[kind].get(entry.name);
        if (existing) {
          errors.push(
            yaml.diagnostic(
              [...at, 'name'],
              `${kind} "${entry.name}" is described twice`,
              `it is also described at ${existing.declaredIn.file}:${existing.declaredIn.line}; merge the two entries`,
            ),
          );
          return;
        }
        if (entry.config) {
          const config = validate(nodeConfigSchema, entry.config, yaml, [...at, 'config'], errors, `${kind} "${entry.name}" (config in ${rel})`);
          for (const [column, type] of Object.entries(config?.column_types ?? {})) {
            const unknown = unknownColumnType(dialectFor(scan.target.type), type);
            if (unknown) errors.push(yaml.diagnostic([...at, 'config', 'column_types', column], `${unknown.message} for column ${column} of ${kind} "${entry.name}" (column_types)`, unknown.hint));
          }
        }
        properties[kind].set(entry.name, { ...entry, declaredIn: yaml.lazyPosition(at), yaml, yamlPath: at });
      });
    }
    (parsed.unit_tests ?? []).forEach((test, i) => {
      unitTests.push({ ...test, declaredIn: yaml.lazyPosition(['unit_tests', i]), yaml, yamlPath: ['unit_tests', i] });
    });
    (parsed.sources ?? []).forEach((source, i) => {
      sources.push({ ...source, declaredIn: yaml.lazyPosition(['sources', i]), yaml, yamlPath: ['sources', i] });
    });
  }

  const folderConfig = buildFolderConfig(projectFile, configYaml, projectFile.name, errors, {
    model: models,
    seed: seeds,
    snapshot: snapshots,
    test: singularTests,
  }, scan.target.type);
  diagnostics.throwIfAny();
  return {
    ...scan,
    models,
    seeds,
    snapshots,
    singularTests,
    properties,
    sources,
    unitTests,
    partials,
    genericTests,
    helperModules,
    folderConfig,
  };
}

function resolveTarget(
  file: ProjectFile,
  yaml: YamlFile,
  requested: string | undefined,
  vars: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
  errors: Diagnostic[],
): { targetName: string; target?: TargetConfig; secrets: Secrets } {
  const names = Object.keys(file.targets);
  const secrets: Secrets = { values: new Set() };
  declaredSecrets(env, secrets);
  const targetName = requested ?? file.target ?? names[0];
  if (!targetName || !(targetName in file.targets)) {
    const hint = targetName ? didYouMean(targetName, names) : undefined;
    errors.push(
      yaml.diagnostic(
        requested ? ['targets'] : ['target'],
        targetName ? `unknown target "${targetName}"` : 'no targets defined in etl.yml',
        hint ?? (names.length ? `defined targets: ${names.join(', ')}` : 'add a target under `targets:`'),
        !requested,
      ),
    );
    return { targetName: targetName ?? '', secrets };
  }
  const raw = file.targets[targetName]!;
  // Every string of the target, nested ones too (a DuckDB target's settings:), may read the environment.
  const render = (value: unknown, at: string[]): unknown => {
    if (typeof value === 'string') {
      const result = interpolateConfigString(value, vars, env, secrets, at.some((k) => /password|url|secret|token|key/i.test(k)));
      if (!('error' in result)) return result.value;
      errors.push(yaml.diagnostic(['targets', targetName, ...at], result.error, result.hint));
      return undefined;
    }
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, render(v, [...at, k])]).filter(([, v]) => v !== undefined));
    }
    return value;
  };
  const rendered = render(raw, []) as Record<string, unknown>;
  const target = validate(targetSchema, rendered, yaml, ['targets', targetName], errors, `target "${targetName}"`);
  if (!target) return { targetName, secrets };
  return {
    targetName,
    target: { ...target, name: targetName, schema: target.schema ?? dialectFor(target.type).defaultSchema, threads: target.threads ?? 4 },
    secrets,
  };
}

/**
 * Folder-level config from etl.yml: `models: { materialized: view, staging: { tags: [x] } }`.
 * A key is a config key (optionally written `+key`, as in dbt) or a folder name;
 * the project's own name is accepted as an optional first level.
 */
function buildFolderConfig(
  file: ProjectFile,
  yaml: YamlFile,
  projectName: string,
  errors: Diagnostic[],
  files: Record<ResourceKind, ProjectSourceFile[]>,
  engine: string,
): Project['folderConfig'] {
  const sections = { model: 'models', seed: 'seeds', snapshot: 'snapshots', test: 'tests' } as const;
  // For each kind: folder path ('' = top) -> config declared at that level.
  const levels: Record<ResourceKind, Map<string, NodeConfigInput>> = {
    model: new Map(),
    seed: new Map(),
    snapshot: new Map(),
    test: new Map(),
  };
  for (const kind of Object.keys(sections) as ResourceKind[]) {
    const section = sections[kind];
    const tree = (file as Record<string, unknown>)[section] as Record<string, unknown> | undefined;
    if (!tree) continue;
    const folders = new Set<string>();
    for (const f of files[kind]) {
      const parts = f.path.split('/').slice(1, -1);
      for (let i = 1; i <= parts.length; i++) folders.add(parts.slice(0, i).join('/'));
    }
    const walk = (node: Record<string, unknown>, folder: string, at: YamlPath) => {
      const config: Record<string, unknown> = {};
      // The project-name level is more specific than the section's top level: walk it last.
      const projectLevel: Array<() => void> = [];
      for (const [rawKey, value] of Object.entries(node)) {
        const key = rawKey.startsWith('+') ? rawKey.slice(1) : rawKey;
        if (NODE_CONFIG_KEYS.has(key)) {
          const parsed = nodeConfigShape[key as keyof typeof nodeConfigShape].safeParse(value);
          if (!parsed.success) {
            const issue = parsed.error.issues[0]!;
            const owner = `the folder default of ${folderDescription(section, folder, files[kind])} in etl.yml`;
            const { message, hint } = describeValueIssue(issue, value, [key, ...issue.path].join('.'), owner);
            errors.push(yaml.diagnostic([...at, rawKey, ...(issue.path as Array<string | number>)], message, hint));
          } else {
            config[key] = parsed.data;
            if (key === 'column_types') {
              for (const [column, type] of Object.entries(parsed.data as Record<string, string>)) {
                const unknown = unknownColumnType(dialectFor(engine as Dialect['name']), type);
                if (unknown) errors.push(yaml.diagnostic([...at, rawKey, column], `${unknown.message} for column ${column} in the column_types default of ${folderDescription(section, folder, files[kind])} in etl.yml`, unknown.hint));
              }
            }
          }
          continue;
        }
        if (folder === '' && key === projectName && value && typeof value === 'object') {
          projectLevel.push(() => walk(value as Record<string, unknown>, '', [...at, rawKey]));
          continue;
        }
        const sub = folder ? `${folder}/${key}` : key;
        if (value && typeof value === 'object' && !Array.isArray(value) && folders.has(sub)) {
          walk(value as Record<string, unknown>, sub, [...at, rawKey]);
          continue;
        }
        const childFolders = [...folders].filter((f) => path.posix.dirname(f) === (folder || '.')).map((f) => path.posix.basename(f));
        const hint = didYouMean(key, [...NODE_CONFIG_KEYS, ...childFolders]);
        errors.push(
          yaml.diagnostic(
            [...at, rawKey],
            `unknown key "${rawKey}" in etl.yml ${section}${folder ? ` (folder ${folder})` : ''}: neither a config key nor a folder of ${section}/`,
            hint ?? `config keys: ${[...NODE_CONFIG_KEYS].join(', ')}`,
            true,
          ),
        );
      }
      const existing = levels[kind].get(folder);
      levels[kind].set(folder, existing ? mergeConfig(existing, config as NodeConfigInput) : (config as NodeConfigInput));
      for (const walkProjectLevel of projectLevel) walkProjectLevel();
    };
    walk(tree, '', [section]);
  }
  return (kind, relPath) => {
    const parts = relPath.split('/').slice(1, -1);
    let merged: NodeConfigInput = {};
    for (let i = 0; i <= parts.length; i++) {
      const level = levels[kind].get(parts.slice(0, i).join('/'));
      if (level) merged = mergeConfig(merged, level);
    }
    return merged;
  };
}

/** "models/marts (orders, customers)": a folder default names the nodes it applies to. */
function folderDescription(section: string, folder: string, files: ProjectSourceFile[]): string {
  const names = files.filter((f) => folder === '' || f.path.split('/').slice(1, -1).join('/').startsWith(folder)).map((f) => f.name);
  const list = names.length > 3 ? `${names.slice(0, 3).join(', ')}, ...` : names.join(', ');
  return `${section}${folder ? `/${folder}` : ''}${list ? ` (${list})` : ''}`;
}

/** Later wins, except tags, which add up (as in dbt). */
export function mergeConfig(base: NodeConfigInput, over: NodeConfigInput): NodeConfigInput {
  const out: NodeConfigInput = { ...base, ...over };
  if (base.tags !== undefined && over.tags !== undefined) {
    const tags = [...asList(base.tags), ...asList(over.tags)];
    out.tags = [...new Set(tags)];
  }
  return out;
}

export function asList(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}
