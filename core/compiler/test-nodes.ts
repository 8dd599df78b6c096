// Compile stage 5: the test nodes, now that every relation is known: generic
// tests from the yml files (built-in and custom, macros/tests/*.sql), unit
// tests, and the singular tests' attachment. A quarantined model evaluates
// its row-level tests while it is built, so it also depends on what they read.

import type { Dialect } from '../../adapters/dialect.js';
import { compileGenericTests, type CustomGenericTest } from '../data-tests/compile-tests.js';
import { compileUnitTests } from '../data-tests/unit-tests.js';
import { didYouMean, type Diagnostic } from '../errors.js';
import { findCycle } from '../graph/graph.js';
import type { Project } from '../project/load.js';
import { builtinHelpers } from '../templates/helpers.js';
import { renderTemplate } from '../templates/render.js';
import type { ProjectMacros } from './macros.js';
import type { ManifestNode } from './manifest.js';
import type { ProjectNodes } from './nodes.js';
import type { Renderer } from './render.js';
import { graphOfPending } from './resolve.js';

/** Returns the test nodes (generic and unit); singular tests stay among the pending nodes. */
export function compileTestNodes(project: Project, dialect: Dialect, macros: ProjectMacros, nodes: ProjectNodes, renderer: Renderer, errors: Diagnostic[]): ManifestNode[] {
  const { byName, pending } = nodes;
  const customTests = new Map<string, CustomGenericTest>();
  for (const [name, def] of macros.genericTests) {
    const dependsOn: string[] = [];
    let unresolved = false;
    for (const ref of def.analysis.refs) {
      const target = byName.get(ref.name);
      if (!target) {
        unresolved = true;
        errors.push({ file: def.path, line: ref.line, col: ref.col, message: `unknown ref "${ref.name}"`, hint: didYouMean(ref.name, byName.keys()) });
      } else dependsOn.push(target.node.unique_id);
    }
    customTests.set(name, {
      name,
      path: def.path,
      dependsOn,
      // Its unknown ref is already reported: rendering it would only add a second, confusing error.
      render: unresolved ? () => '' : (context) => renderTemplate(def.ast, { ...context, target: renderer.target }, { file: def.path, helpers: renderer.helpers, partials: renderer.partials, thisRelation: String(context.model) }),
    });
  }
  const input = { project, dialect, nodesByName: new Map([...byName].map(([k, v]) => [k, v.node])), sources: nodes.sources, errors };
  const testNodes = compileGenericTests({ ...input, customTests });
  const unitTestNodes = compileUnitTests({
    ...input,
    renderModel: (model, resolveRef, resolveSource, opts) => {
      const p = pending.get(model.unique_id)!;
      const unitHelpers = new Map(renderer.helpers);
      for (const [name, fn] of builtinHelpers({ ...renderer.scope, resolveRef, resolveSource, vars: { ...project.vars, ...opts.vars } })) unitHelpers.set(name, fn);
      return renderTemplate(
        p.ast!,
        { ...renderer.rootContext(model), is_incremental: opts.isIncremental },
        { file: p.file.path, helpers: unitHelpers, partials: renderer.partials, partialFiles: renderer.partialFiles, thisRelation: model.relation_name ?? '' },
      );
    },
  });
  testNodes.push(...unitTestNodes);
  for (const t of nodes.singularTests) {
    const clash = testNodes.find((g) => g.name === t.node.name);
    if (clash) errors.push({ file: t.file.path, message: `singular test "${t.node.name}" has the name of a generic test declared in ${clash.original_file_path}`, hint: 'rename the file, or give the generic test a name: in its config' });
    // A singular test about exactly one node blocks that node's children when it fails.
    t.node.attached_node = t.node.depends_on.nodes.length === 1 ? t.node.depends_on.nodes[0]! : null;
  }
  addQuarantineDependencies(nodes, testNodes, errors);
  return testNodes;
}

/** A quarantined model also depends on what its row-level tests read (the `to` of a relationships test). */
function addQuarantineDependencies(nodes: ProjectNodes, testNodes: ManifestNode[], errors: Diagnostic[]): void {
  let added = false;
  for (const t of testNodes) {
    const model = t.attached_node ? nodes.pending.get(t.attached_node)?.node : undefined;
    if (!model?.config.quarantine || !t.row_condition) continue;
    for (const dep of t.depends_on.nodes) {
      if (dep !== model.unique_id && !model.depends_on.nodes.includes(dep)) {
        model.depends_on.nodes.push(dep);
        added = true;
      }
    }
  }
  // Without a new edge, the graph is the one the resolve stage found acyclic.
  if (!added) return;
  const cycle = findCycle(graphOfPending(nodes.pending));
  if (cycle) {
    const names = cycle.map((id) => nodes.pending.get(id)!.node.name);
    errors.push({
      file: nodes.pending.get(cycle[0]!)!.file.path,
      message: `dependency cycle through a quarantined model's relationships test: ${[...names, names[0]].join(' -> ')}`,
      hint: 'a quarantine: true model must be built after the models its relationships tests point to',
    });
  }
}
