// Static analysis of a template's syntax tree, without rendering: the refs and
// sources it depends on (a ref inside an {{#if}} still counts), its {{config}}
// calls, the helpers, partials and bare names it uses. A ref whose argument is
// not a literal cannot be known statically and is an error.

import type { Diagnostic } from '../errors.js';
import { nodePosition } from './parse.js';

export interface Located {
  line: number;
  col: number;
}

export interface TemplateAnalysis {
  refs: Array<Located & { name: string }>;
  sources: Array<Located & { source: string; table: string }>;
  /** The hash of every {{config ...}} call, in order; evaluated by the compiler. */
  configCalls: hbs.AST.Hash[];
  partials: Array<Located & { name: string }>;
  /** Names used in call position: {{name arg}}, {{#name}}, (name ...). */
  helpers: Array<Located & { name: string }>;
  /** {{name}} with no arguments where the context is the root one: a helper or a root variable. */
  bareNames: Array<Located & { name: string }>;
}

const CONTEXT_KEEPING_BLOCKS = new Set(['if', 'unless']);

export function analyzeTemplate(ast: hbs.AST.Program, file: string, errors: Diagnostic[]): TemplateAnalysis {
  const out: TemplateAnalysis = { refs: [], sources: [], configCalls: [], partials: [], helpers: [], bareNames: [] };

  const literalArgs = (call: { params: hbs.AST.Expression[]; path: hbs.AST.Node }, name: string, count: [number, number]): string[] | undefined => {
    const params = call.params;
    const pos = nodePosition(call.path);
    if (params.length < count[0] || params.length > count[1]) {
      const usage = name === 'ref' ? '{{ref "model_name"}}' : '{{source "source_name" "table_name"}}';
      errors.push({ file, ...pos, message: `${name} takes ${count[0] === count[1] ? count[0] : `${count[0]} or ${count[1]}`} argument(s), got ${params.length}`, hint: `write ${usage}` });
      return undefined;
    }
    const values: string[] = [];
    for (const p of params) {
      if (p.type !== 'StringLiteral') {
        const shown = (p as hbs.AST.PathExpression).original ?? p.type;
        errors.push({
          file,
          ...nodePosition(p),
          message: `${name} argument must be a quoted literal, got ${shown}`,
          hint: `dependencies are found without rendering, so write ${name === 'ref' ? '{{ref "model_name"}}' : '{{source "raw" "orders"}}'} with the name in quotes`,
        });
        return undefined;
      }
      values.push((p as hbs.AST.StringLiteral).value);
    }
    return values;
  };

  const visitCall = (
    node: hbs.AST.MustacheStatement | hbs.AST.SubExpression | hbs.AST.BlockStatement,
    rootScope: boolean,
    blockParams: Set<string>,
  ) => {
    const path = node.path as hbs.AST.PathExpression | hbs.AST.Literal;
    if (path.type !== 'PathExpression') return;
    const p = path as hbs.AST.PathExpression;
    const name = p.original;
    const hasArgs = node.params.length > 0 || (node.hash?.pairs.length ?? 0) > 0;
    const isSimpleName = !p.data && p.depth === 0 && p.parts.length === 1;
    if (isSimpleName && name === 'ref') {
      const args = literalArgs(node, 'ref', [1, 1]);
      if (args) out.refs.push({ name: args[0]!, ...nodePosition(p) });
    } else if (isSimpleName && name === 'source') {
      const args = literalArgs(node, 'source', [2, 2]);
      if (args) out.sources.push({ source: args[0]!, table: args[1]!, ...nodePosition(p) });
    } else if (isSimpleName && name === 'config') {
      if (node.hash) out.configCalls.push(node.hash);
    }
    if (isSimpleName && !blockParams.has(p.parts[0]!)) {
      if (hasArgs || node.type !== 'MustacheStatement') out.helpers.push({ name, ...nodePosition(p) });
      else if (rootScope) out.bareNames.push({ name, ...nodePosition(p) });
    }
    for (const param of node.params) visitExpr(param, rootScope, blockParams);
    for (const pair of node.hash?.pairs ?? []) visitExpr(pair.value, rootScope, blockParams);
  };

  const visitExpr = (expr: hbs.AST.Expression, rootScope: boolean, blockParams: Set<string>) => {
    if (expr.type === 'SubExpression') visitCall(expr as hbs.AST.SubExpression, rootScope, blockParams);
  };

  const visitProgram = (program: hbs.AST.Program | undefined, rootScope: boolean, blockParams: Set<string>) => {
    if (!program) return;
    let params = blockParams;
    if (program.blockParams?.length) {
      params = new Set([...blockParams, ...program.blockParams]);
    }
    for (const stmt of program.body) {
      switch (stmt.type) {
        case 'MustacheStatement':
          visitCall(stmt as hbs.AST.MustacheStatement, rootScope, params);
          break;
        case 'BlockStatement': {
          const block = stmt as hbs.AST.BlockStatement;
          visitCall(block, rootScope, params);
          const name = (block.path as hbs.AST.PathExpression).original;
          const keepsContext = CONTEXT_KEEPING_BLOCKS.has(name);
          visitProgram(block.program, rootScope && keepsContext, params);
          visitProgram(block.inverse, rootScope && keepsContext, params);
          break;
        }
        case 'PartialStatement':
        case 'PartialBlockStatement': {
          const partial = stmt as hbs.AST.PartialStatement;
          if (partial.name.type !== 'PathExpression' && (partial.name.type as string) !== 'StringLiteral') {
            errors.push({ file, ...nodePosition(partial), message: 'a partial name must be literal, e.g. {{> my_partial}}' });
            break;
          }
          const name = (partial.name as hbs.AST.PathExpression).original ?? (partial.name as unknown as hbs.AST.StringLiteral).value;
          out.partials.push({ name, ...nodePosition(partial) });
          for (const p of partial.params) visitExpr(p, rootScope, params);
          for (const pair of partial.hash?.pairs ?? []) visitExpr(pair.value, rootScope, params);
          if (stmt.type === 'PartialBlockStatement') visitProgram((stmt as hbs.AST.PartialBlockStatement).program, false, params);
          break;
        }
        case 'DecoratorBlock':
        case 'Decorator':
          errors.push({ file, ...nodePosition(stmt), message: 'Handlebars decorators are not supported in etl templates' });
          break;
        default:
          break;
      }
    }
  };

  visitProgram(ast, true, new Set());
  return out;
}
