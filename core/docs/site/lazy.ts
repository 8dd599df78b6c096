// The lazily loaded bundles: page.js (Markdown, SQL) and graph.js (layout).

import { loadScript } from './data.js';
import type { PageLib } from './page-lib.js';

export async function pageLib(): Promise<PageLib> {
  await loadScript('assets/page.js', 'etlPage');
  return (window as unknown as { etlPage: PageLib }).etlPage;
}
