// JUnit XML for CI systems: one testsuite per run, one testcase per node;
// a failing test carries its failing-row count and first rows.

import type { Manifest } from '../compiler/manifest.js';
import type { NodeResult } from '../runner/events.js';
import { formatTable } from './table.js';

function xml(text: string): string {
  // Control characters (other than tab and newlines) cannot appear in XML 1.0 at all, even
  // escaped; failing rows may hold them, so they become U+FFFD rather than break the file.
  return text
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/g, '\uFFFD')
    .replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}

export function junitXml(manifest: Manifest, results: NodeResult[], elapsedSeconds: number): string {
  const failures = results.filter((r) => r.status === 'fail').length;
  const errors = results.filter((r) => r.status === 'error').length;
  const skipped = results.filter((r) => r.status === 'skipped').length;
  const cases = results.map((r) => {
    const node = manifest.nodes[r.unique_id];
    const classname = node ? `${node.resource_type}.${node.attached_node ? manifest.nodes[node.attached_node]?.name ?? node.attached_node : node.name}` : 'etl';
    const head = `    <testcase name="${xml(node?.name ?? r.unique_id)}" classname="${xml(classname)}" time="${r.execution_time.toFixed(3)}"`;
    if (r.status === 'fail' || r.status === 'error') {
      const tag = r.status === 'fail' ? 'failure' : 'error';
      const sample = r.failing_rows_sample ? `\n\nFirst failing rows:\n${formatTable(r.failing_rows_sample.columns, r.failing_rows_sample.rows)}` : '';
      const body = `${r.message}${r.failures !== null ? `\nfailing rows: ${r.failures}` : ''}${sample}${r.compiled_path ? `\ncompiled SQL: ${r.compiled_path}` : ''}`;
      return `${head}>\n      <${tag} message="${xml(r.message.split('\n')[0]!)}" type="${r.status}">${xml(body)}</${tag}>\n    </testcase>`;
    }
    if (r.status === 'skipped') return `${head}>\n      <skipped message="${xml(r.message)}"/>\n    </testcase>`;
    if (r.status === 'warn') return `${head}>\n      <system-out>${xml(`warning: ${r.message}`)}</system-out>\n    </testcase>`;
    return `${head}/>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${results.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${elapsedSeconds.toFixed(3)}">`,
    `  <testsuite name="etl.${xml(manifest.metadata.project_name)}" tests="${results.length}" failures="${failures}" errors="${errors}" skipped="${skipped}" time="${elapsedSeconds.toFixed(3)}" timestamp="${new Date().toISOString()}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
