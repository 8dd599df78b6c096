// Selection, part 2: matching. What one selector method names among the
// manifest's nodes and sources (fqn, tag, path, file, config.<key>,
// resource_type, test_type, test_name, package, source), with globs as dbt's
// (fnmatch), and the did-you-mean when a part names nothing. Knows nothing of
// the graph or of run history.

import type { ManifestNode, ManifestSource } from '../compiler/manifest.js';
import { closestMatch } from '../errors.js';
import type { Part } from './select-grammar.js';

/** What a part is matched against. */
export interface MatchScope {
  nodes: ManifestNode[];
  sources: ManifestSource[];
  /** The manifest's project_root: path: values may be given from it. */
  projectRoot?: string;
}

const KNOWN_STATUSES = ['success', 'error', 'skipped', 'pass', 'fail', 'warn'];

/**
 * The ids of the nodes and sources a part's method:value names, before graph
 * operators. state: and result: read run history: select.ts evaluates those.
 */
export function matchPart(part: Part, scope: MatchScope): Set<string> {
  const out = new Set<string>();
  const v = part.value;
  const take = <T extends { unique_id: string }>(list: T[], pred: (x: T) => boolean): Set<string> => {
    for (const x of list) if (pred(x)) out.add(x.unique_id);
    return out;
  };
  switch (part.method) {
    case 'fqn': {
      const name = globMatcher(v);
      return take(scope.nodes, (n) => name(n.name) || !!n.other_names?.some(name) || fqnMatches(n.fqn, v) || fqnMatches(n.fqn.slice(1), v));
    }
    case 'tag': {
      const tag = globMatcher(v);
      const has = (x: { tags: string[]; config?: { tags?: unknown } }): boolean =>
        x.tags.some(tag) || (Array.isArray(x.config?.tags) && x.config.tags.some((t) => typeof t === 'string' && tag(t)));
      take(scope.nodes, has);
      return take(scope.sources, has);
    }
    case 'path': {
      const matches = pathMatcher(v, scope.projectRoot);
      take(scope.nodes, (n) => matches(n.original_file_path));
      return take(scope.sources, (s) => matches(s.original_file_path));
    }
    case 'file': {
      const file = globMatcher(v);
      return take(scope.nodes, (n) => {
        const base = baseName(n.original_file_path);
        return file(base) || file(base.replace(/\.[^.]*$/, ''));
      });
    }
    case 'config': {
      const want = globMatcher(v);
      return take(scope.nodes, (n) => configMatches(lookup(n.config, part.configKey!), want));
    }
    case 'resource_type':
      if (v === 'source') return take(scope.sources, () => true);
      if (v === 'unit_test') return take(scope.nodes, (n) => testTypeOf(n) === 'unit');
      return take(scope.nodes, (n) => n.resource_type === v);
    case 'test_type': {
      const t = v === 'data' ? 'singular' : v === 'schema' ? 'generic' : v;
      return take(scope.nodes, (n) => testTypeOf(n) === t);
    }
    case 'test_name': {
      const name = globMatcher(v);
      return take(scope.nodes, (n) => {
        const meta = (n as ManifestNode & { test_metadata?: { name?: unknown } }).test_metadata;
        return n.resource_type === 'test' && typeof meta?.name === 'string' && name(meta.name);
      });
    }
    case 'package': {
      const pkg = globMatcher(v);
      take(scope.nodes, (n) => pkg(n.package_name));
      return take(scope.sources, (s) => pkg(s.package_name));
    }
    case 'source': {
      // raw | raw.orders | package.raw.orders, each part may be a glob.
      const segs = v.split('.');
      const [pkg, src, table] = segs.length >= 3 ? [segs[0], segs[1], segs.slice(2).join('.')] : [undefined, segs[0], segs[1]];
      const pkgM = pkg === undefined ? () => true : globMatcher(pkg);
      const srcM = globMatcher(src ?? '');
      const tableM = table === undefined ? () => true : globMatcher(table);
      take(scope.sources, (s) => pkgM(s.package_name) && srcM(s.source_name) && tableM(s.name));
      // A loaded source selects its loader too: `etl extract -s source:crm.customers`.
      for (const s of scope.sources) if (s.loaded_by && out.has(s.unique_id)) out.add(s.loaded_by);
      return out;
    }
    case 'state':
    case 'result':
      throw new Error(`${part.method}: reads run history and is evaluated by select.ts`);
  }
}

/** The warning for a part that matched nothing, with a did-you-mean where a candidate is close. */
export function noMatchWarning(part: Part, scope: MatchScope, history: { disabled: ManifestNode[]; statuses: string[] }): string {
  const head = `"${part.text}" matched no node`;
  const suggest = (value: string | undefined, prefix = part.implicit ? '' : `${part.method === 'config' ? `config.${part.configKey!.join('.')}` : part.method}:`): string =>
    value !== undefined ? `${head}; did you mean "${prefix}${value}"?` : head;
  const v = part.value;
  if (isGlob(v) && part.method !== 'path') return head;
  switch (part.method) {
    case 'fqn': {
      const disabled = history.disabled.find((n) => n.name === v);
      if (disabled) return `"${part.text}" matched no enabled node; ${disabled.resource_type} "${disabled.name}" is disabled`;
      return suggest(closestMatch(v, new Set(scope.nodes.map((n) => n.name))));
    }
    case 'tag': {
      const tags = new Set<string>();
      for (const x of [...scope.nodes, ...scope.sources]) for (const t of x.tags) tags.add(t);
      return suggest(closestMatch(v, tags));
    }
    case 'path': {
      const paths = new Set<string>();
      for (const x of [...scope.nodes, ...scope.sources]) {
        const segs = normalizePath(x.original_file_path).split('/');
        for (let i = 1; i <= segs.length; i++) paths.add(segs.slice(0, i).join('/'));
      }
      return suggest(closestMatch(normalizePath(v), paths), part.implicit ? '' : 'path:');
    }
    case 'file':
      return suggest(closestMatch(v, new Set(scope.nodes.map((n) => baseName(n.original_file_path)))));
    case 'source': {
      const names = new Set<string>();
      for (const s of scope.sources) {
        names.add(s.source_name);
        names.add(`${s.source_name}.${s.name}`);
      }
      return `"${part.text}" matched no source${closestMatch(v, names) ? `; did you mean "source:${closestMatch(v, names)}"?` : ''}`;
    }
    case 'result': {
      const statuses = new Set([...KNOWN_STATUSES, ...history.statuses]);
      if (statuses.has(v)) return `${head} (no node had status "${v}" in the previous run)`;
      return suggest(closestMatch(v, statuses));
    }
    case 'package':
      return suggest(closestMatch(v, new Set(scope.nodes.map((n) => n.package_name))));
    default:
      return head;
  }
}

/** 'generic' | 'singular' | 'unit' for a test node, undefined for anything else. */
export function testTypeOf(node: ManifestNode): 'generic' | 'singular' | 'unit' | undefined {
  if (node.resource_type !== 'test') return undefined;
  const extra = node as ManifestNode & { test_metadata?: unknown; unit_test?: unknown; test_type?: unknown };
  if (extra.unit_test || extra.test_type === 'unit') return 'unit';
  if (extra.test_metadata) return 'generic';
  return 'singular';
}

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
export function stableJson(v: unknown): string {
  return JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  ) ?? 'undefined';
}
