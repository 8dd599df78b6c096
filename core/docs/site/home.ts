// Home: the project at a glance, all from the index's summary (no node file
// is loaded): counts, folders, the last run, failing and warning tests,
// quarantined rows, stale sources, the slowest models, recent runs.

import type { TestSummary } from '../model.js';
import { h, formatAge, formatCost, formatSeconds, formatTime, statusBadge } from './dom.js';
import type { Site } from './data.js';
import { nodeHref } from './routes.js';

function nodeLink(site: Site, i: number | null, fallback: string): HTMLElement {
  return i === null ? h('span', null, fallback) : h('a', { href: nodeHref(site, i) }, site.index.names[i]!);
}

function section(title: string, ...body: Array<Node | null>): HTMLElement {
  const id = `home-${title.toLowerCase().replace(/[^a-z]+/g, '-')}`;
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...body);
}

function testList(site: Site, tests: TestSummary[], empty: string): HTMLElement {
  if (!tests.length) return h('p', { class: 'muted' }, empty);
  return h(
    'ul',
    { class: 'plain' },
    tests.slice(0, 20).map((t) =>
      h('li', null, h('span', { class: 'mono' }, t.name), ' on ', nodeLink(site, t.node, '?'), t.column ? ` (${t.column})` : '', t.failures !== null ? h('span', { class: 'count' }, ` ${t.failures} failing row${t.failures === 1 ? '' : 's'}`) : ''),
    ),
    tests.length > 20 ? h('li', { class: 'muted' }, `and ${tests.length - 20} more`) : null,
  );
}

export function renderHome(site: Site, view: HTMLElement): void {
  const s = site.index.summary;
  const types: Array<[string, string]> = [['model', 'Models'], ['source', 'Sources'], ['seed', 'Seeds'], ['snapshot', 'Snapshots'], ['loader', 'Loaders']];
  view.append(
    h('h1', { tabindex: '-1' }, site.index.project),
    h('p', { class: 'muted' }, `Generated ${new Date(site.index.generated_at).toLocaleString()} · ${site.index.adapter}`),
    h(
      'ul',
      { class: 'stats', 'aria-label': 'Counts by resource type' },
      types.map(([t, label]) => h('li', null, h('a', { href: `#/list?type=${t}` }, h('strong', null, String(s.counts[t] ?? 0)), h('span', null, label)))),
      h('li', null, h('strong', null, String(s.tests)), h('span', null, 'Tests')),
    ),
  );
  const lr = s.last_run;
  const grid = h('div', { class: 'grid' });
  grid.append(
    section(
      'Last run',
      lr
        ? h(
            'div',
            null,
            h('p', null, statusBadge(lr.failures.length ? 'error' : 'success'), ` ${formatTime(lr.generated_at)} · ${formatSeconds(lr.elapsed_time)}`),
            h('p', null, Object.entries(lr.statuses).map(([k, v]) => h('span', { class: 'pill' }, statusBadge(k), ` ${v}`))),
            lr.failures.length
              ? h('ul', { class: 'plain' }, lr.failures.map((f) => h('li', null, statusBadge(f.status), ' ', f.test ? [h('span', { class: 'mono' }, f.test), ' on '] : null, nodeLink(site, f.node, f.test ?? f.id), h('div', { class: 'message' }, f.message))))
              : h('p', { class: 'muted' }, 'No failures.'),
          )
        : h('p', { class: 'muted' }, 'No run yet (target/run_results.json is written by etl build, run, seed and test).'),
    ),
    section('Failing tests', testList(site, s.failing_tests, lr ? 'None.' : 'No test results yet.')),
    section('Warnings', testList(site, s.warning_tests, lr ? 'None.' : 'No test results yet.')),
    section(
      'Quarantined rows',
      s.quarantined.length
        ? h('ul', { class: 'plain' }, s.quarantined.map((q) => h('li', null, nodeLink(site, q.node, ''), h('span', { class: 'count' }, ` ${q.rows} row${q.rows === 1 ? '' : 's'}`))))
        : h('p', { class: 'muted' }, 'None in the last run.'),
    ),
    section(
      'Stale sources',
      s.stale_sources.length
        ? h('ul', { class: 'plain' }, s.stale_sources.map((f) => h('li', null, statusBadge(f.status), ' ', nodeLink(site, f.node, f.id), ` · ${f.error ?? formatAge(f.age_s)}`)))
        : h('p', { class: 'muted' }, site.index.summary.counts.source ? 'None (from the last etl source freshness).' : 'No sources.'),
    ),
    section(
      'Slowest in the last run',
      s.slowest.length
        ? h('ol', { class: 'plain bars' }, s.slowest.map((x) => h('li', null, nodeLink(site, x.node, ''), h('span', { class: 'count' }, ` ${formatSeconds(x.seconds)}`), x.cost !== undefined && site.index.currency ? h('span', { class: 'count cost' }, ` · ${formatCost(x.cost, site.index.currency)}`) : null, h('span', { class: 'bar', style: `width:${Math.max(2, (100 * x.seconds) / s.slowest[0]!.seconds)}%`, 'aria-hidden': 'true' }))))
        : h('p', { class: 'muted' }, 'No run yet.'),
    ),
  );
  if (s.runs.length) {
    grid.append(
      section(
        'Run history',
        h(
          'table',
          null,
          h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Started'), h('th', { scope: 'col' }, 'Command'), h('th', { scope: 'col' }, 'Status'))),
          h('tbody', null, s.runs.map((r) => h('tr', null, h('td', null, formatTime(r.started_at)), h('td', null, r.command), h('td', null, statusBadge(r.status))))),
        ),
      ),
    );
  }
  view.append(grid);
  // Only the resource types the project has; on a phone each folder is a card.
  const present = types.filter(([t]) => s.counts[t]);
  const folders = h(
    'table',
    { class: 'folders cards' },
    h('caption', null, 'Folders'),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Folder'), present.map(([, label]) => h('th', { scope: 'col', class: 'num' }, label)))),
    h(
      'tbody',
      null,
      s.folders.slice(0, 200).map((f) => h('tr', null, h('th', { scope: 'row' }, h('a', { href: `#/list?folder=${encodeURIComponent(f.folder)}` }, f.folder)), present.map(([t, label]) => h('td', { class: 'num', 'data-label': label }, f.counts[t] ? String(f.counts[t]) : '')))),
    ),
  );
  view.append(h('div', { class: 'scroll' }, folders));
  if (s.folders.length > 200) view.append(h('p', { class: 'muted' }, `${s.folders.length - 200} more folders: see the graph view.`));
}
