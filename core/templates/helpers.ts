// The helpers every template has: Handlebars' own block helpers (if, unless,
// each, with, lookup) and etl's (ref, source, config, var, env_var, list).
// Project macros (macros/**/*.{js,mjs,ts} named exports) are added on top.

import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { isEmpty, type HelperFn, type HelperOptions } from './render.js';
import { SECRET_ENV_PREFIX } from '../project/secrets.js';

export interface HelperScope {
  /** The quoted relation (or ephemeral CTE name) of a model, seed or snapshot; `at`: an older version of it (version=, timestamp=). */
  resolveRef(name: string, at?: { version?: unknown; timestamp?: unknown }): string;
  resolveSource(source: string, table: string): string;
  vars: Record<string, unknown>;
  env: NodeJS.ProcessEnv;
  /** Called for each environment variable a template reads, so caches can key on it. */
  onEnvRead?(name: string): void;
}

const lastIsOptions = (args: unknown[]): { params: unknown[]; options: HelperOptions } => ({
  params: args.slice(0, -1),
  options: args[args.length - 1] as HelperOptions,
});

/** Names that are root variables in every template rather than helpers. */
export const ROOT_VARIABLES = ['is_incremental', 'this', 'target', 'model', 'batch_start', 'batch_end'] as const;

export const BUILTIN_HELPER_NAMES = ['if', 'unless', 'each', 'with', 'lookup', 'ref', 'source', 'config', 'var', 'env_var', 'list'] as const;

export function builtinHelpers(scope: HelperScope): Map<string, HelperFn> {
  const helpers = new Map<string, HelperFn>();

  helpers.set('if', function (this: unknown, ...args) {
    const { params, options } = lastIsOptions(args);
    if (params.length !== 1) throw new Error('#if takes exactly one argument');
    return isFalsy(params[0], options.hash.includeZero) ? options.inverse(this) : options.fn(this);
  });
  helpers.set('unless', function (this: unknown, ...args) {
    const { params, options } = lastIsOptions(args);
    if (params.length !== 1) throw new Error('#unless takes exactly one argument');
    return isFalsy(params[0], options.hash.includeZero) ? options.fn(this) : options.inverse(this);
  });
  helpers.set('each', function (this: unknown, ...args) {
    const { params, options } = lastIsOptions(args);
    const value = params[0];
    if (value === null || value === undefined || typeof value !== 'object') return options.inverse(this);
    const entries: Array<[string | number, unknown]> = Array.isArray(value)
      ? value.map((v, i) => [i, v])
      : Object.entries(value as Record<string, unknown>);
    if (entries.length === 0) return options.inverse(this);
    let out = '';
    entries.forEach(([key, item], i) => {
      out += options.fn(item, {
        data: { index: i, key, first: i === 0, last: i === entries.length - 1 },
        blockParams: [item, key],
      });
    });
    return out;
  });
  helpers.set('with', function (this: unknown, ...args) {
    const { params, options } = lastIsOptions(args);
    const value = params[0];
    if (isEmpty(value)) return options.inverse(this);
    return options.fn(value, { blockParams: [value] });
  });
  helpers.set('lookup', (...args) => {
    const { params } = lastIsOptions(args);
    const [obj, key] = params;
    if (obj === null || obj === undefined) return undefined;
    return (obj as Record<string, unknown>)[String(key)];
  });

  helpers.set('ref', (...args) => {
    const { params, options } = lastIsOptions(args);
    const at = options.hash && ('version' in options.hash || 'timestamp' in options.hash) ? options.hash : undefined;
    return scope.resolveRef(String(params[0]), at);
  });
  helpers.set('source', (...args) => {
    const { params } = lastIsOptions(args);
    return scope.resolveSource(String(params[0]), String(params[1]));
  });
  // Config is read statically by the compiler; at render time it writes nothing.
  helpers.set('config', () => '');
  helpers.set('var', (...args) => readVar(scope.vars, lastIsOptions(args).params));
  helpers.set('env_var', (...args) => readEnvVar(scope, lastIsOptions(args).params));
  helpers.set('list', (...args) => lastIsOptions(args).params);
  return helpers;
}

/** Handlebars' #if test: falsy values and [] are false; 0 is false unless includeZero=true. */
function isFalsy(cond: unknown, includeZero: unknown): boolean {
  return (!includeZero && !cond) || isEmpty(cond);
}

/** {{env_var "NAME" "default"}}, in a template or a config value: the rules live here once. */
export function readEnvVar(scope: { env: NodeJS.ProcessEnv; onEnvRead?: (name: string) => void }, params: unknown[]): unknown {
  const name = String(params[0]);
  if (name.startsWith(SECRET_ENV_PREFIX)) {
    throw Object.assign(new Error(`environment variable ${name} holds a secret (its name starts with ${SECRET_ENV_PREFIX}): it may only be used in a target setting in etl.yml`), {
      hint: "a template's SQL and config are written to target/compiled/ and the manifest: pass the credential through the target instead, or rename the variable if it is not secret",
    });
  }
  scope.onEnvRead?.(name);
  const value = scope.env[name];
  if (value !== undefined) return value;
  if (params.length > 1) return params[1];
  throw Object.assign(new Error(`environment variable ${name} is not set`), {
    hint: `export ${name}=..., or give a default: {{env_var "${name}" "default"}}`,
  });
}

export function readVar(vars: Record<string, unknown>, params: unknown[]): unknown {
  const name = String(params[0]);
  if (name in vars) return vars[name];
  if (params.length > 1) return params[1];
  throw Object.assign(new Error(`var "${name}" is not set`), {
    hint: `set it under vars: in etl.yml, pass --vars '{"${name}": ...}', or give a default: {{var "${name}" "default"}}`,
  });
}

/**
 * Loads project helpers: every function exported by macros/**\/*.{js,mjs,ts}.
 * TypeScript macros are bundled in memory by esbuild (see importableTs).
 */
export async function loadMacroHelpers(modules: Array<{ path: string; absPath: string }>): Promise<Map<string, { fn: HelperFn; path: string }>> {
  const out = new Map<string, { fn: HelperFn; path: string }>();
  for (const mod of modules) {
    const url = mod.absPath.endsWith('.ts') ? await importableTs(mod.absPath, mod.path) : pathToFileURL(mod.absPath).href;
    let exports: Record<string, unknown>;
    try {
      exports = (await import(url)) as Record<string, unknown>;
    } catch (err) {
      const message = err instanceof Error ? `${err.name === 'Error' ? '' : `${err.name}: `}${err.message}` : String(err);
      // (A TypeScript macro runs as bundled code: its frames do not point into the .ts file.)
      throw Object.assign(new Error(message), { file: mod.path, ...(url.startsWith('file:') ? await locateModuleError(err, url) : {}) });
    }
    for (const [name, value] of Object.entries(exports)) {
      if (typeof value !== 'function' || name === 'default') continue;
      const existing = out.get(name);
      if (existing) {
        throw Object.assign(new Error(`helper "${name}" is exported by both ${existing.path} and ${mod.path}`), { file: mod.path });
      }
      out.set(name, { fn: value as HelperFn, path: mod.path });
    }
  }
  return out;
}

/**
 * Where in a macro module its import failed: the module's own frame in the
 * stack for an error thrown while it ran, or, for a syntax error (whose stack
 * holds no position), what `node --check` says of the file.
 */
async function locateModuleError(err: unknown, url: string): Promise<{ line?: number; col?: number }> {
  const stack = err instanceof Error ? (err.stack ?? '') : '';
  const escaped = url.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const frame = new RegExp(`${escaped}:(\\d+):(\\d+)`).exec(stack);
  if (frame) return { line: Number(frame[1]), col: Number(frame[2]) };
  if (!(err instanceof SyntaxError)) return {};
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const file = fileURLToPath(url);
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
  const lines = (check.stderr ?? '').split('\n');
  const at = lines.findIndex((l) => l.startsWith(`${file}:`));
  if (at < 0) return {};
  const line = Number(lines[at]!.slice(file.length + 1));
  const caret = lines[at + 2]?.indexOf('^') ?? -1;
  return Number.isInteger(line) ? { line, col: caret >= 0 ? caret + 1 : undefined } : {};
}

/**
 * A TypeScript macro as a URL that import() takes: esbuild bundles it, with
 * the files it imports by relative path (.ts or not), into one ES module held
 * in memory, so nothing is written to disk and nothing is left behind. Its
 * `import.meta.url` and `require` still answer for the macro's own file.
 */
async function importableTs(absPath: string, relPath: string): Promise<string> {
  const { build } = await import('esbuild');
  const fileUrl = JSON.stringify(pathToFileURL(absPath).href);
  try {
    const result = await build({
      entryPoints: [absPath],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      logLevel: 'silent',
      // Positions in errors are then relative to the macro's folder.
      absWorkingDir: path.dirname(absPath),
      define: { 'import.meta.url': fileUrl },
      banner: { js: `import { createRequire as __etlCreateRequire } from 'node:module'; const require = __etlCreateRequire(${fileUrl});` },
    });
    return `data:text/javascript;base64,${Buffer.from(result.outputFiles[0]!.contents).toString('base64')}`;
  } catch (err) {
    const first = (err as { errors?: Array<{ text: string; location?: { file: string; line: number; column: number } | null }> }).errors?.[0];
    if (!first) throw err;
    const where = first.location;
    // In the macro itself: its line and column; in a file it imports: that file's position in the message.
    if (where && path.resolve(path.dirname(absPath), where.file) === absPath) {
      throw Object.assign(new Error(first.text), { file: relPath, line: where.line, col: where.column + 1 });
    }
    throw Object.assign(new Error(`${first.text}${where ? ` (in ${where.file}:${where.line}:${where.column + 1})` : ''}`), { file: relPath });
  }
}
