// Compile stage 1: the project's macros, read once for every node that uses
// them: partials (macros/**/*.hbs), custom generic tests (macros/tests/*.sql)
// parsed and analysed for refs of their own, and helper modules
// (macros/**/*.{js,mjs,ts}) loaded. Problems go to `errors`; a broken macro
// is left out, so the stages after it report what uses it.

import type { Diagnostic } from '../errors.js';
import type { Project } from '../project/load.js';
import { BUILTIN_TESTS } from '../data-tests/generic.js';
import { analyzeTemplate, type TemplateAnalysis } from '../templates/analyze.js';
import { loadMacroHelpers } from '../templates/helpers.js';
import { parseTemplate, type Ast } from '../templates/parse.js';
import type { HelperFn } from '../templates/render.js';

export interface ParsedMacro {
  ast: Ast;
  analysis: TemplateAnalysis;
  path: string;
}

export interface ProjectMacros {
  /** Partial name -> its template. */
  partials: Map<string, ParsedMacro>;
  /** Custom generic test name -> its template. */
  genericTests: Map<string, ParsedMacro>;
  /** Helper name -> the exported function and the file exporting it. */
  helpers: Map<string, { fn: HelperFn; path: string }>;
}

export async function loadMacros(project: Project, errors: Diagnostic[]): Promise<ProjectMacros> {
  const partials = new Map<string, ParsedMacro>();
  for (const p of project.partials) {
    const parsed = parseTemplate(p.path, p.text);
    if ('error' in parsed) {
      errors.push(parsed.error);
      continue;
    }
    const other = partials.get(p.name);
    if (other) errors.push({ file: p.path, message: `partial "${p.name}" is defined twice`, hint: `also in ${other.path}; rename one of the files` });
    else partials.set(p.name, { ast: parsed.ast, analysis: analyzeTemplate(parsed.ast, p.path, errors), path: p.path });
  }

  // Rendered per use with {model, column_name, ...args}; see the tests stage.
  const genericTests = new Map<string, ParsedMacro>();
  for (const t of project.genericTests) {
    const parsed = parseTemplate(t.path, t.text);
    if ('error' in parsed) {
      errors.push(parsed.error);
      continue;
    }
    const other = genericTests.get(t.name);
    if (other || BUILTIN_TESTS[t.name]) {
      errors.push({ file: t.path, message: `generic test "${t.name}" is defined twice`, hint: other ? `also in ${other.path}` : 'a built-in test has that name; rename the file' });
    } else genericTests.set(t.name, { ast: parsed.ast, analysis: analyzeTemplate(parsed.ast, t.path, errors), path: t.path });
  }

  let helpers = new Map<string, { fn: HelperFn; path: string }>();
  if (project.helperModules.length) {
    try {
      helpers = await loadMacroHelpers(project.helperModules);
    } catch (err) {
      const e = err as Error & { file?: string; line?: number; col?: number };
      errors.push({ file: e.file, line: e.line, col: e.col, message: `cannot load macros: ${e.message}` });
    }
  }
  return { partials, genericTests, helpers };
}
