// A node's page: what it is, its description (Markdown, sanitised), columns
// with engine types, descriptions (own or inherited), tests and lineage, its
// lineage graph, tests, runs, config, contract and SQL. Needs the node's own
// data file only; the graph reads the index.

import type { SiteColumn, SiteIndex, SiteNode, SiteTest } from '../model.js';
import { h, formatAge, formatCost, formatSeconds, formatTime, statusBadge } from './dom.js';
import type { Site } from './data.js';
import { columnHref, isCurrent, nodeHref } from './routes.js';
import { nodeLineage } from './graph.js';
import { pageLib } from './lazy.js';

function testBadge(t: SiteTest): HTMLElement {
  const status = t.status ?? 'not run';
  const failures = t.failures ? ` (${t.failures})` : '';
  return h('span', { class: `badge test status-${status.replace(/\s+/g, '-')}`, title: `${t.name}: ${status}${failures}${t.message ? ` — ${t.message}` : ''}` }, `${t.kind}${t.status && t.status !== 'pass' ? `: ${t.status}${failures}` : ''}`);
}

function refLink(site: Site, ref: { node: string; column: string }): HTMLElement {
  const i = site.byId.get(ref.node);
  const name = i === undefined ? ref.node : site.index.names[i]!;
  return h('a', { href: columnHref(ref.node, ref.column) }, `${name}.${ref.column}`);
}

export function describeColumn(site: Site, c: SiteColumn, md: (text: string) => Node): Node[] {
  if (c.description) return [md(c.description)];
  if (c.inherited) return [md(c.inherited.text), h('p', { class: 'inherited' }, 'Inherited from ', refLink(site, c.inherited.from))];
  return [h('span', { class: 'muted' }, 'No description')];
}

function columnsTable(site: Site, node: SiteNode, md: (text: string) => Node): HTMLElement {
  if (!node.columns.length) return h('p', { class: 'muted' }, 'No columns known (declare them in a properties file, or generate after a build for the catalog).');
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      { class: 'columns cards' },
      h('caption', { class: 'sr-only' }, `Columns of ${node.name}`),
      h('thead', null, h('tr', null, ['Column', 'Type', 'Description', 'Tests', 'Lineage'].map((t) => h('th', { scope: 'col' }, t)))),
      h(
        'tbody',
        null,
        node.columns.map((c) =>
          h(
            'tr',
            { 'data-column': c.name },
            h('th', { scope: 'row', class: 'mono' }, c.name, c.constraints?.length ? h('div', { class: 'muted small' }, c.constraints.join(', ')) : null),
            h('td', { class: 'mono type', 'data-label': 'Type' }, c.type ?? '', c.declared_type && c.type && c.declared_type.toLowerCase() !== c.type.toLowerCase() ? h('div', { class: 'muted small' }, `declared ${c.declared_type}`) : null),
            h('td', { class: 'desc', 'data-label': 'Description' }, describeColumn(site, c, md)),
            h('td', { class: 'tests', 'data-label': 'Tests' }, c.tests.map((k) => testBadge(node.tests[k]!))),
            h(
              'td',
              { class: 'lin', 'data-label': 'Lineage' },
              c.lineage || c.downstream
                ? h('a', { href: columnHref(node.id, c.name), 'aria-label': `Column lineage of ${c.name}` }, c.lineage ? c.lineage.kind : 'downstream')
                : h('span', { class: 'muted' }, site.index.has_lineage ? 'none' : '—'),
            ),
          ),
        ),
      ),
    ),
  );
}

/** Upstream or downstream neighbours by name; a hub's long list ends in a link to all of them. */
function neighbourList(site: Site, center: number, dir: 'parents' | 'children', ids: number[], empty: string): HTMLElement {
  if (!ids.length) return h('p', { class: 'muted' }, empty);
  const sorted = [...ids].sort((a, b) => site.index.names[a]!.localeCompare(site.index.names[b]!));
  return h(
    'ul',
    { class: 'node-list' },
    sorted.slice(0, NEIGHBOURS_LISTED).map((i) => h('li', null, h('span', { class: `kind kind-${site.type(i)}` }, site.type(i)), h('a', { href: nodeHref(site, i) }, site.index.names[i]!))),
    sorted.length > NEIGHBOURS_LISTED ? h('li', null, h('a', { href: `#/list?${dir}=${encodeURIComponent(site.index.ids[center]!)}` }, `All ${sorted.length} ${dir === 'parents' ? 'upstream' : 'downstream'}`)) : null,
  );
}

/** Neighbours listed on a node page; the rest are one link away. */
const NEIGHBOURS_LISTED = 200;

function section(id: string, title: string, ...body: Array<Node | null | Array<Node | null>>): HTMLElement {
  return h('section', { id: `sec-${id}`, 'aria-labelledby': `h-${id}` }, h('h2', { id: `h-${id}` }, title), ...body.flat());
}

function valueText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function codeBlock(node: SiteNode, dialect: SiteIndex['sql_dialect']): HTMLElement {
  const variants: Array<[string, string]> = [];
  if (node.compiled_code) variants.push(['Compiled', node.compiled_code]);
  if (node.raw_code) variants.push(['Source', node.raw_code]);
  if (!variants.length) return h('p', { class: 'muted' }, 'No SQL.');
  const pre = h('pre', { class: 'sql', tabindex: '0', 'aria-label': 'SQL' });
  const code = h('code', null);
  pre.append(code);
  let shown = 0;
  let formatted = true;
  const buttons: HTMLButtonElement[] = [];
  const draw = async () => {
    const [label, text] = variants[shown]!;
    code.textContent = text;
    buttons.forEach((b, k) => b.setAttribute('aria-pressed', String(k === shown)));
    fmt.setAttribute('aria-pressed', String(formatted));
    const lib = await pageLib();
    // Source templates are shown as written: formatting would not see {{ }} as SQL.
    const out = formatted && label === 'Compiled' ? lib.formatSql(text, dialect) : text;
    code.textContent = '';
    code.append(lib.highlightSql(out));
  };
  variants.forEach(([label], k) => buttons.push(h('button', { type: 'button', onclick: () => ((shown = k), void draw()) }, label)));
  const fmt = h('button', { type: 'button', onclick: () => ((formatted = !formatted), void draw()) }, 'Formatted');
  const copy = h('button', { type: 'button', onclick: () => void navigator.clipboard?.writeText(code.textContent ?? '') }, 'Copy');
  // After the page's first frame: formatting a long query must not delay showing the page.
  requestAnimationFrame(() => setTimeout(() => void draw(), 0));
  return h('div', { class: 'code' }, h('div', { class: 'toolbar', role: 'toolbar', 'aria-label': 'SQL view' }, buttons, fmt, copy), pre);
}

/** The node's last runs; cost where etl.yml sets rates (priced as `etl report` does). */
function runHistory(node: SiteNode, currency: string | undefined): HTMLElement {
  const heads = ['Started', 'Status', 'Duration', 'Rows', ...(currency ? ['Cost'] : []), 'Message'];
  return h(
    'div',
    { class: 'scroll' },
    h(
      'table',
      { class: 'cards runs' },
      h('caption', null, 'Run history'),
      h('thead', null, h('tr', null, heads.map((t) => h('th', { scope: 'col', class: t === 'Rows' || t === 'Cost' || t === 'Duration' ? 'num' : null }, t)))),
      h(
        'tbody',
        null,
        node.history.map((r) =>
          h(
            'tr',
            null,
            h('th', { scope: 'row', class: 'time' }, formatTime(r.started_at)),
            h('td', { 'data-label': 'Status' }, statusBadge(r.status)),
            h('td', { class: 'num duration', 'data-label': 'Duration' }, r.seconds === null || r.seconds === undefined ? '' : formatSeconds(r.seconds)),
            h('td', { class: 'num', 'data-label': 'Rows' }, r.rows === null ? '' : String(r.rows)),
            currency ? h('td', { class: 'num cost', 'data-label': 'Cost' }, r.cost === undefined ? '' : formatCost(r.cost, currency)) : null,
            h('td', { 'data-label': 'Message' }, h('span', { class: 'message' }, r.message)),
          ),
        ),
      ),
    ),
  );
}

export async function renderNodePage(site: Site, view: HTMLElement, id: string, query: URLSearchParams, token: number): Promise<void> {
  const i = site.byId.get(id);
  if (i === undefined) {
    view.append(h('h1', { tabindex: '-1' }, 'Not in this project'), h('p', null, `No node ${id}. `, h('a', { href: '#/' }, 'Back to the project')));
    return;
  }
  const [node, lib] = await Promise.all([site.node(i), pageLib()]);
  if (!isCurrent(token)) return;
  const md = (text: string) => h('div', { class: 'markdown' }, lib.markdown(text));
  const lineage = await nodeLineage(site, i, query, (q) => `${nodeHref(site, i)}?${q}`);
  if (!isCurrent(token)) return;
  const upstream = site.index.parents[i]!;
  const downstream = site.children[i]!;
  const run = node.run;
  const currency = site.index.currency;
  view.append(
    h(
      'header',
      { class: 'node-head' },
      h('p', { class: 'crumbs' }, h('a', { href: `#/list?folder=${encodeURIComponent(site.folder(i))}` }, site.folder(i))),
      h('h1', { tabindex: '-1' }, node.name),
      h(
        'p',
        { class: 'badges' },
        h('span', { class: `badge kind-${node.type}` }, node.type),
        node.materialized ? h('span', { class: 'badge' }, node.materialized) : null,
        run ? statusBadge(run.status) : null,
        node.contract ? h('span', { class: `badge ${node.contract.enforced ? 'contract' : ''}` }, node.contract.enforced ? 'contract enforced' : 'contract not enforced') : null,
        node.tags.map((t) => h('a', { class: 'badge tag', href: `#/list?tag=${encodeURIComponent(t)}` }, `#${t}`)),
      ),
      h('p', { class: 'muted mono small' }, node.relation ?? '', node.relation ? ' · ' : '', node.path),
    ),
    h(
      'nav',
      { class: 'jump', 'aria-label': 'Sections' },
      [['columns', 'Columns'], ['lineage', 'Lineage'], ['tests', 'Tests'], ['runs', 'Runs'], ['config', 'Config'], ['code', 'SQL']].map(([k, t]) =>
        h('a', { href: `#sec-${k}`, onclick: (e: Event) => { e.preventDefault(); document.getElementById(`sec-${k}`)?.scrollIntoView(); (document.getElementById(`h-${k}`) as HTMLElement | null)?.focus(); } }, t),
      ),
    ),
    node.description ? md(node.description) : h('p', { class: 'muted' }, 'No description.'),
  );
  if (node.source) {
    const f = node.source.freshness_result;
    view.append(
      section(
        'freshness',
        'Freshness',
        h('p', null, f ? [statusBadge(f.status), ` loaded ${formatAge(f.age_s)}`, f.max_loaded_at ? ` (${f.max_loaded_at})` : '', f.error ? ` · ${f.error}` : ''] : 'Not checked (etl source freshness writes target/sources.json).'),
        h('p', { class: 'muted' }, `loaded_at_field: ${node.source.loaded_at_field ?? 'none'} · criteria: ${JSON.stringify(node.source.freshness ?? {})}`),
      ),
    );
  }
  view.append(
    section('columns', `Columns (${node.columns.length})`, columnsTable(site, node, md)),
    section(
      'lineage',
      'Lineage',
      lineage,
      h('div', { class: 'two' }, h('div', null, h('h3', null, `Upstream (${upstream.length})`), neighbourList(site, i, 'parents', upstream, 'Nothing upstream.')), h('div', null, h('h3', null, `Downstream (${downstream.length})`), neighbourList(site, i, 'children', downstream, 'Nothing downstream.'))),
    ),
    section(
      'tests',
      `Tests (${node.tests.length})`,
      node.tests.length
        ? h(
            'div',
            { class: 'scroll' },
            h(
              'table',
              { class: 'cards tests' },
              h('caption', { class: 'sr-only' }, `Tests of ${node.name}`),
              h('thead', null, h('tr', null, ['Test', 'Column', 'Severity', 'Status', 'Failures'].map((t) => h('th', { scope: 'col', class: t === 'Failures' ? 'num' : null }, t)))),
              h(
                'tbody',
                null,
                node.tests.map((t) =>
                  h(
                    'tr',
                    null,
                    h('th', { scope: 'row', class: 'mono name' }, t.name),
                    h('td', { class: 'mono', 'data-label': 'Column' }, t.column ?? ''),
                    h('td', { 'data-label': 'Severity' }, t.severity),
                    h('td', { 'data-label': 'Status' }, statusBadge(t.status ?? 'not run')),
                    h('td', { class: 'num failures', 'data-label': 'Failures' }, t.failures === null || t.failures === undefined ? '' : String(t.failures)),
                  ),
                ),
              ),
            ),
          )
        : h('p', { class: 'muted' }, 'No tests.'),
    ),
    section(
      'runs',
      'Runs',
      run
        ? h('p', null, 'Last run: ', statusBadge(run.status), ` ${formatTime(run.completed_at)} · ${formatSeconds(run.execution_time)}${run.rows !== null ? ` · ${run.rows} rows` : ''}${run.quarantined !== undefined ? ` · ${run.quarantined} quarantined` : ''}${run.cost !== undefined && currency ? ` · ${formatCost(run.cost, currency)}` : ''}`, run.message ? h('span', { class: 'message' }, ` ${run.message}`) : null)
        : h('p', { class: 'muted' }, 'Not in the last run.'),
      node.history.length ? runHistory(node, currency) : null,
    ),
    section(
      'config',
      'Config',
      node.contract ? h('p', null, `Contract: ${node.contract.enforced ? 'enforced' : 'not enforced'}`, node.contract.status ? [', last build ', statusBadge(node.contract.status)] : '', node.contract.message ? h('span', { class: 'message' }, ` ${node.contract.message}`) : null) : null,
      Object.keys(node.config).length ? h('dl', { class: 'config' }, Object.entries(node.config).map(([k, v]) => [h('dt', null, k), h('dd', { class: 'mono' }, valueText(v))])) : h('p', { class: 'muted' }, 'Defaults.'),
    ),
    section('code', 'SQL', codeBlock(node, site.index.sql_dialect)),
  );
}
