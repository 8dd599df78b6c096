// Node selection: the --select / --exclude grammar, as dbt's.
//
//   select  = arg*            each CLI arg is split on whitespace into terms
//   term    = part (',' part)*            terms are unioned, parts intersected
//   part    = '@'? (N? '+')? (method ':')? value ('+' N?)?
//
// `+x` adds ancestors, `x+` descendants (N limits the depth), `@x` adds x's
// descendants and every ancestor of those. Sources take part in matching and
// graph traversal (`source:raw+` selects the children of raw) but are never
// returned: only manifest.nodes (models, seeds, snapshots, tests) are.
//
// Every step is O(V+E) per selector part: projects have 10,000+ nodes.

import type { Manifest, ManifestNode, ManifestSource } from '../compiler/manifest.js';
import { type Diagnostic, ProjectError, closestMatch, didYouMean } from '../errors.js';
import { graphOfManifest, reach, type DependencyGraph } from './graph.js';

export interface SelectionContext {
  manifest: Manifest;
  /** Manifest of a previous run (from --state DIR), for state:modified / state:new */
  stateManifest?: Manifest;
  /** run_results.json of the last run, for result:<status> */
  previousResults?: { results: Array<{ unique_id: string; status: string }> };
}

/**
 * How tests are added when their parents are selected (dbt's --indirect-selection):
 * - `empty` (default here): only what the selectors name;
 * - `eager`: also every test with at least one selected parent (dbt's default for build/test);
 * - `cautious`: also tests all of whose parents are selected;
 * - `buildable`: also tests whose parents are each selected or an ancestor of a selected node.
 * A test named by --exclude is never added back.
 */
export type IndirectSelection = 'eager' | 'cautious' | 'buildable' | 'empty';

export interface SelectOptions {
  indirectSelection?: IndirectSelection;
}

export const SELECTOR_METHODS = [
  'fqn',
  'tag',
  'path',
  'file',
  'config',
  'resource_type',
  'source',
  'state',
  'result',
  'test_type',
  'test_name',
  'package',
] as const;
export type SelectorMethod = (typeof SELECTOR_METHODS)[number];

const RESOURCE_TYPES = ['model', 'seed', 'snapshot', 'test', 'source', 'unit_test'] as const;
const TEST_TYPES = ['generic', 'singular', 'unit', 'data', 'schema'] as const;
const STATE_VALUES = ['modified', 'modified.body', 'modified.configs', 'new', 'old', 'unmodified'] as const;
const KNOWN_STATUSES = ['success', 'error', 'skipped', 'pass', 'fail', 'warn'];

/** Returns the set of selected unique_ids (nodes only: models, seeds, snapshots, tests; never sources).
 * select undefined or empty => every node. exclude removes nodes. Bad syntax / unknown method => throw ProjectError (exit code 2). */
export function selectNodes(ctx: SelectionContext, select?: string[], exclude?: string[], options?: SelectOptions): Set<string> {
  return explainSelection(ctx, select, exclude, options).selected;
}

/** selectNodes, plus a warning for every selector that matched nothing (with a did-you-mean where one is close). */
export function explainSelection(
  ctx: SelectionContext,
  select?: string[],
  exclude?: string[],
  options: SelectOptions = {},
): { selected: Set<string>; warnings: string[] } {
  const diagnostics: Diagnostic[] = [];
  const include = parseSelection(ctx, select ?? [], '--select', diagnostics);
  const excludeTerms = parseSelection(ctx, exclude ?? [], '--exclude', diagnostics);
  if (diagnostics.length) throw new ProjectError(diagnostics);

  const ev = new Evaluator(ctx);
  const warnings: string[] = [];
  // Internally sets may hold source ids too; they are dropped at the very end.
  let selected: Set<string>;
  if (include.length === 0) {
    selected = new Set(Object.keys(ctx.manifest.nodes));
  } else {
    selected = new Set();
    for (const term of include) for (const id of ev.term(term, warnings)) selected.add(id);
  }
  const excluded = new Set<string>();
  for (const term of excludeTerms) for (const id of ev.term(term, warnings)) excluded.add(id);
  for (const id of excluded) selected.delete(id);

  const mode = options.indirectSelection ?? 'empty';
  if (mode !== 'empty') addIndirectTests(ev.graph, ctx.manifest, selected, excluded, mode);

  const nodes = ctx.manifest.nodes;
  const result = new Set<string>();
  for (const id of selected) if (Object.hasOwn(nodes, id)) result.add(id);
  return { selected: result, warnings };
}

/** 'generic' | 'singular' | 'unit' for a test node, undefined for anything else. */
export function testTypeOf(node: ManifestNode): 'generic' | 'singular' | 'unit' | undefined {
  if (node.resource_type !== 'test') return undefined;
  const extra = node as ManifestNode & { test_metadata?: unknown; unit_test?: unknown; test_type?: unknown };
  if (extra.unit_test || extra.test_type === 'unit') return 'unit';
  if (extra.test_metadata) return 'generic';
  return 'singular';
}

// ---------------------------------------------------------------------------
// Parsing

interface Part {
  /** The part as written, with its graph operators. */
  raw: string;
  /** method:value without graph operators, as the user wrote it (for messages). */
  text: string;
  method: SelectorMethod;
  /** Bare value: no method was written. */
  implicit: boolean;
  /** For config.<key>: the key path. */
  configKey?: string[];
  value: string;
  childrensParents: boolean;
  parents: boolean;
  parentsDepth?: number;
  children: boolean;
  childrenDepth?: number;
}

type Term = Part[];

// @? (N? +)? (method :)? value (+ N?)?
const PART_RE = /^(@)?(?:(\d*)\+)?(?:([^:/\\@+]+):)?(.*?)(?:\+(\d*))?$/s;

function parseSelection(ctx: SelectionContext, args: string[], flag: string, diagnostics: Diagnostic[]): Term[] {
  const terms: Term[] = [];
  for (const arg of args) {
    for (const termText of arg.split(/\s+/)) {
      if (termText === '') continue;
      const parts: Part[] = [];
      let ok = true;
      for (const partText of termText.split(',')) {
        const part = parsePart(ctx, partText, termText, flag, diagnostics);
        if (part) parts.push(part);
        else ok = false;
      }
      if (ok) terms.push(parts);
    }
  }
  return terms;
}

function parsePart(ctx: SelectionContext, raw: string, term: string, flag: string, diagnostics: Diagnostic[]): Part | undefined {
  const fail = (message: string, hint?: string): undefined => {
    diagnostics.push({ message: `${flag} "${term}": ${message}`, ...(hint ? { hint } : {}) });
    return undefined;
  };
  if (raw === '') {
    return fail(
      'empty selector between commas',
      'a comma intersects two selectors and takes no spaces around it, e.g. "tag:nightly,path:models/marts"',
    );
  }
  const m = PART_RE.exec(raw);
  if (!m) return fail(`cannot parse "${raw}"`, 'selectors look like name, +name, name+, 2+name, @name, tag:x, path:dir');
  const at: string | undefined = m[1];
  let parentsDigits: string | undefined = m[2];
  const method: string | undefined = m[3];
  let value: string = m[4] ?? '';
  let childrenDigits: string | undefined = m[5];
  // "2024+" is the model 2024 and its children, not an empty value with a depth.
  if (value === '' && !method && parentsDigits && childrenDigits === undefined) {
    value = parentsDigits;
    parentsDigits = undefined;
    childrenDigits = '';
  }
  const parents = parentsDigits !== undefined;
  const children = childrenDigits !== undefined;
  const text = method !== undefined ? `${method}:${value}` : value;
  if (value === '') {
    return fail(
      method ? `"${method}:" needs a value` : `"${raw}" names nothing to select`,
      'write a node name or method:value, e.g. orders, tag:nightly, path:models/marts',
    );
  }
  if (at && children) {
    return fail(`"@" and a "+" suffix cannot be combined in "${raw}"`, `"@${value}" already selects ${value}'s descendants and their ancestors`);
  }
  const part: Part = {
    raw,
    text,
    method: 'fqn',
    implicit: method === undefined,
    value,
    childrensParents: !!at,
    parents,
    children,
    ...(parentsDigits ? { parentsDepth: Number(parentsDigits) } : {}),
    ...(childrenDigits ? { childrenDepth: Number(childrenDigits) } : {}),
  };

  if (method === undefined) {
    // dbt's default method: a path if it looks like one, a file name if it has
    // a file extension, else a name / fqn.
    if (value.includes('/') || value.includes('\\')) part.method = 'path';
    else if (/\.(sql|csv|py)$/i.test(value)) part.method = 'file';
    return part;
  }

  const [head = '', ...keyPath] = method.split('.');
  if (head === 'config') {
    if (keyPath.length === 0 || keyPath.some((k) => k === '')) {
      return fail(`"${method}:" needs a config key`, `write config.<key>:<value>, e.g. config.materialized:table`);
    }
    part.method = 'config';
    part.configKey = keyPath;
  } else if ((SELECTOR_METHODS as readonly string[]).includes(method)) {
    part.method = method as SelectorMethod;
  } else {
    let suggestion = closestMatch(method, SELECTOR_METHODS);
    if (!suggestion && keyPath.length && closestMatch(head, ['config'])) suggestion = ['config', ...keyPath].join('.');
    return fail(
      `unknown selector method "${method}"`,
      `${suggestion ? `did you mean "${suggestion}"? ` : ''}methods: ${SELECTOR_METHODS.map((x) => (x === 'config' ? 'config.<key>' : x)).join(', ')}`,
    );
  }

  const oneOf = (allowed: readonly string[], what: string): Part | undefined => {
    if (allowed.includes(value)) return part;
    const dym = didYouMean(value, allowed);
    return fail(`unknown ${what} "${value}"`, `${dym ? `${dym} ` : ''}expected one of: ${allowed.join(', ')}`);
  };
  switch (part.method) {
    case 'resource_type':
      return oneOf(RESOURCE_TYPES, 'resource_type');
    case 'test_type':
      return oneOf(TEST_TYPES, 'test_type');
    case 'state':
      if (!ctx.stateManifest) {
        return fail('state: selectors need --state DIR', 'pass --state with the target/ directory of an earlier run (it holds that run\'s manifest.json)');
      }
      return oneOf(STATE_VALUES, 'state');
    case 'result':
      if (!ctx.previousResults) {
        return fail(
          'no previous run_results.json for result: selectors',
          'result: reads run_results.json of the last run (target/, or the --state DIR); run a command first',
        );
      }
      return part;
    default:
      return part;
  }
}

function addIndirectTests(graph: DependencyGraph, manifest: Manifest, selected: Set<string>, excluded: Set<string>, mode: IndirectSelection): void {
  const ancestors = mode === 'buildable' ? reach(graph, selected, 'up') : undefined;
  const add: string[] = [];
  for (const node of Object.values(manifest.nodes)) {
    if (node.resource_type !== 'test' || selected.has(node.unique_id) || excluded.has(node.unique_id)) continue;
    const parents = graph.parents.get(node.unique_id) ?? [];
    if (parents.length === 0) continue;
    const hit =
      mode === 'eager'
        ? parents.some((p) => selected.has(p))
        : mode === 'cautious'
          ? parents.every((p) => selected.has(p))
          : parents.some((p) => selected.has(p)) && parents.every((p) => selected.has(p) || ancestors!.has(p));
    if (hit) add.push(node.unique_id);
  }
  for (const id of add) selected.add(id);
}

// ---------------------------------------------------------------------------
// Evaluation

class Evaluator {
  readonly graph: DependencyGraph;
  private readonly nodes: ManifestNode[];
  private readonly sources: ManifestSource[];
  constructor(private readonly ctx: SelectionContext) {
    this.graph = graphOfManifest(ctx.manifest);
    this.nodes = Object.values(ctx.manifest.nodes);
    this.sources = Object.values(ctx.manifest.sources ?? {});
  }

  term(parts: Term, warnings: string[]): Set<string> {
    let result: Set<string> | undefined;
    let matchedOnlySources = false;
    for (const part of parts) {
      const base = this.match(part);
      if (base.size === 0) warnings.push(this.noMatchWarning(part));
      const expanded = this.expand(part, base);
      if (result === undefined) result = expanded;
      else {
        const [small, big] = result.size <= expanded.size ? [result, expanded] : [expanded, result];
        result = new Set([...small].filter((id) => big.has(id)));
      }
      if (base.size > 0 && !part.children && !part.childrensParents && [...base].every((id) => !Object.hasOwn(this.ctx.manifest.nodes, id))) {
        matchedOnlySources = true;
      }
    }
    const out = result ?? new Set<string>();
    if (matchedOnlySources && parts.length === 1 && ![...out].some((id) => Object.hasOwn(this.ctx.manifest.nodes, id))) {
      const p = parts[0]!;
      warnings.push(`"${p.raw}" selects only sources, which are not built; "${p.raw}+" selects their children`);
    }
    return out;
  }

  private expand(part: Part, base: Set<string>): Set<string> {
    if (part.childrensParents) {
      return reach(this.graph, reach(this.graph, base, 'down'), 'up');
    }
    if (!part.parents && !part.children) return base;
    const out = new Set(base);
    if (part.parents) for (const id of reach(this.graph, base, 'up', part.parentsDepth)) out.add(id);
    if (part.children) for (const id of reach(this.graph, base, 'down', part.childrenDepth)) out.add(id);
    return out;
  }

  /** The ids a part's method:value names, before graph operators (may include sources). */
  private match(part: Part): Set<string> {
    const out = new Set<string>();
    const v = part.value;
    const take = <T extends { unique_id: string }>(list: T[], pred: (x: T) => boolean): Set<string> => {
      for (const x of list) if (pred(x)) out.add(x.unique_id);
      return out;
    };
    switch (part.method) {
      case 'fqn': {
        const name = globMatcher(v);
        return take(this.nodes, (n) => name(n.name) || !!n.other_names?.some(name) || fqnMatches(n.fqn, v) || fqnMatches(n.fqn.slice(1), v));
      }
      case 'tag': {
        const tag = globMatcher(v);
        const has = (x: { tags: string[]; config?: { tags?: unknown } }): boolean =>
          x.tags.some(tag) || (Array.isArray(x.config?.tags) && x.config.tags.some((t) => typeof t === 'string' && tag(t)));
        take(this.nodes, has);
        return take(this.sources, has);
      }
      case 'path': {
        const matches = pathMatcher(v, this.ctx.manifest.metadata?.project_root);
        take(this.nodes, (n) => matches(n.original_file_path));
        return take(this.sources, (s) => matches(s.original_file_path));
      }
      case 'file': {
        const file = globMatcher(v);
        return take(this.nodes, (n) => {
          const base = baseName(n.original_file_path);
          return file(base) || file(base.replace(/\.[^.]*$/, ''));
        });
      }
      case 'config': {
        const want = globMatcher(v);
        return take(this.nodes, (n) => configMatches(lookup(n.config, part.configKey!), want));
      }
      case 'resource_type':
        if (v === 'source') return take(this.sources, () => true);
        if (v === 'unit_test') return take(this.nodes, (n) => testTypeOf(n) === 'unit');
        return take(this.nodes, (n) => n.resource_type === v);
      case 'test_type': {
        const t = v === 'data' ? 'singular' : v === 'schema' ? 'generic' : v;
        return take(this.nodes, (n) => testTypeOf(n) === t);
      }
      case 'test_name': {
        const name = globMatcher(v);
        return take(this.nodes, (n) => {
          const meta = (n as ManifestNode & { test_metadata?: { name?: unknown } }).test_metadata;
          return n.resource_type === 'test' && typeof meta?.name === 'string' && name(meta.name);
        });
      }
      case 'package': {
        const pkg = globMatcher(v);
        take(this.nodes, (n) => pkg(n.package_name));
        return take(this.sources, (s) => pkg(s.package_name));
      }
      case 'source': {
        // raw | raw.orders | package.raw.orders, each part may be a glob.
        const segs = v.split('.');
        const [pkg, src, table] = segs.length >= 3 ? [segs[0], segs[1], segs.slice(2).join('.')] : [undefined, segs[0], segs[1]];
        const pkgM = pkg === undefined ? () => true : globMatcher(pkg);
        const srcM = globMatcher(src ?? '');
        const tableM = table === undefined ? () => true : globMatcher(table);
        return take(this.sources, (s) => pkgM(s.package_name) && srcM(s.source_name) && tableM(s.name));
      }
      case 'state':
        return this.matchState(v);
      case 'result': {
        for (const r of this.ctx.previousResults?.results ?? []) {
          if (r.status === v && (Object.hasOwn(this.ctx.manifest.nodes, r.unique_id) || Object.hasOwn(this.ctx.manifest.sources ?? {}, r.unique_id))) {
            out.add(r.unique_id);
          }
        }
        return out;
      }
    }
  }

  private matchState(v: string): Set<string> {
    const old = this.ctx.stateManifest!.nodes;
    const out = new Set<string>();
    if (v === 'old') {
      for (const n of this.nodes) if (Object.hasOwn(old, n.unique_id)) out.add(n.unique_id);
      return out;
    }
    for (const n of this.nodes) {
      const prev = Object.hasOwn(old, n.unique_id) ? old[n.unique_id] : undefined;
      const isNew = prev === undefined;
      const body = !isNew && prev.checksum?.checksum !== n.checksum.checksum;
      const configs = !isNew && stableJson(prev.config) !== stableJson(n.config);
      let hit: boolean;
      switch (v) {
        case 'new':
          hit = isNew;
          break;
        case 'modified.body':
          hit = body;
          break;
        case 'modified.configs':
          hit = configs;
          break;
        case 'unmodified':
          hit = !isNew && !body && !configs;
          break;
        default: // modified
          hit = isNew || body || configs;
      }
      if (hit) out.add(n.unique_id);
    }
    return out;
  }

  private noMatchWarning(part: Part): string {
    const head = `"${part.text}" matched no node`;
    const suggest = (value: string | undefined, prefix = part.implicit ? '' : `${part.method === 'config' ? `config.${part.configKey!.join('.')}` : part.method}:`): string =>
      value !== undefined ? `${head}; did you mean "${prefix}${value}"?` : head;
    const v = part.value;
    if (isGlob(v) && part.method !== 'path') return head;
    switch (part.method) {
      case 'fqn': {
        const disabled = Object.values(this.ctx.manifest.disabled ?? {})
          .flat()
          .find((n) => n.name === v);
        if (disabled) return `"${part.text}" matched no enabled node; ${disabled.resource_type} "${disabled.name}" is disabled`;
        return suggest(closestMatch(v, new Set(this.nodes.map((n) => n.name))));
      }
      case 'tag': {
        const tags = new Set<string>();
        for (const x of [...this.nodes, ...this.sources]) for (const t of x.tags) tags.add(t);
        return suggest(closestMatch(v, tags));
      }
      case 'path': {
        const paths = new Set<string>();
        for (const x of [...this.nodes, ...this.sources]) {
          const segs = normalizePath(x.original_file_path).split('/');
          for (let i = 1; i <= segs.length; i++) paths.add(segs.slice(0, i).join('/'));
        }
        return suggest(closestMatch(normalizePath(v), paths), part.implicit ? '' : 'path:');
      }
      case 'file':
        return suggest(closestMatch(v, new Set(this.nodes.map((n) => baseName(n.original_file_path)))));
      case 'source': {
        const names = new Set<string>();
        for (const s of this.sources) {
          names.add(s.source_name);
          names.add(`${s.source_name}.${s.name}`);
        }
        return `"${part.text}" matched no source${closestMatch(v, names) ? `; did you mean "source:${closestMatch(v, names)}"?` : ''}`;
      }
      case 'result': {
        const statuses = new Set([...KNOWN_STATUSES, ...(this.ctx.previousResults?.results ?? []).map((r) => r.status)]);
        if (statuses.has(v)) return `${head} (no node had status "${v}" in the previous run)`;
        return suggest(closestMatch(v, statuses));
      }
      case 'package':
        return suggest(closestMatch(v, new Set(this.nodes.map((n) => n.package_name))));
      default:
        return head;
    }
  }
}

// ---------------------------------------------------------------------------
// Matching helpers

function isGlob(s: string): boolean {
  return /[*?[\]]/.test(s);
}

const globCache = new Map<string, RegExp>();

/** fnmatch-style: * any run, ? one character, [abc] / [!abc] a class. Case-sensitive. */
function globRegex(pattern: string): RegExp {
  let re = globCache.get(pattern);
  if (re) return re;
  let src = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') src += '.*';
    else if (c === '?') src += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end === -1) {
        src += '\\[';
        continue;
      }
      let body = pattern.slice(i + 1, end);
      const negate = body.startsWith('!');
      if (negate) body = body.slice(1);
      src += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = end;
    } else src += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  re = new RegExp(`^${src}$`, 's');
  if (globCache.size > 1000) globCache.clear();
  globCache.set(pattern, re);
  return re;
}

function globMatcher(pattern: string): (s: string) => boolean {
  if (!isGlob(pattern)) return (s) => s === pattern;
  const re = globRegex(pattern);
  return (s) => re.test(s);
}

/** dbt's fqn rule: the leaf name, or the selector's dotted parts as a prefix of the fqn (a trailing glob matches the rest). */
function fqnMatches(fqn: readonly string[], selector: string): boolean {
  if (fqn.length === 0) return false;
  if (fqn[fqn.length - 1] === selector) return true;
  const flat = fqn.flatMap((s) => s.split('.'));
  const parts = selector.split('.');
  if (flat.length < parts.length) return false;
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!;
    if (isGlob(p)) return globRegex(parts.slice(i).join('.')).test(flat.slice(i).join('.'));
    if (flat[i] !== p) return false;
  }
  return true;
}

function normalizePath(p: string): string {
  let s = p.replace(/\\/g, '/').replace(/\/{2,}/g, '/');
  while (s.startsWith('./')) s = s.slice(2);
  if (s.length > 1 && s.endsWith('/')) s = s.slice(0, -1);
  return s;
}

function baseName(p: string): string {
  const s = normalizePath(p);
  return s.slice(s.lastIndexOf('/') + 1);
}

/** path:X matches a file X or any file under the folder X (relative to the project root); globs allowed. */
function pathMatcher(value: string, projectRoot: string | undefined): (p: string) => boolean {
  let v = normalizePath(value);
  const root = projectRoot ? normalizePath(projectRoot) : undefined;
  if (root && root !== '/' && (v === root || v.startsWith(`${root}/`))) v = v.slice(root.length + 1);
  if (v === '' || v === '.') return () => true;
  if (isGlob(v)) {
    const re = globRegex(v);
    return (p) => {
      const segs = normalizePath(p).split('/');
      for (let i = segs.length; i >= 1; i--) if (re.test(segs.slice(0, i).join('/'))) return true;
      return false;
    };
  }
  const dir = `${v}/`;
  return (p) => {
    const n = normalizePath(p);
    return n === v || n.startsWith(dir);
  };
}

function lookup(config: Record<string, unknown>, key: string[]): unknown {
  const joined = key.join('.');
  if (key.length > 1 && Object.hasOwn(config, joined)) return config[joined];
  let cur: unknown = config;
  for (const k of key) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = Object.hasOwn(cur, k) ? (cur as Record<string, unknown>)[k] : undefined;
  }
  return cur;
}

function configMatches(value: unknown, want: (s: string) => boolean): boolean {
  if (value === undefined || value === null) return false;
  if (Array.isArray(value)) return value.some((x) => x !== null && typeof x !== 'object' && want(String(x)));
  if (typeof value === 'object') return want(stableJson(value));
  return want(String(value));
}

/** JSON with object keys sorted, so equal configs compare equal regardless of key order. */
function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  ) ?? 'undefined';
}
