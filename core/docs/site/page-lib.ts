// Loaded with the first node page (assets/page.js), not with the home page:
// Markdown (marked, then DOMPurify so no script or handler from a description
// survives), SQL formatting (sql-formatter) and highlighting (highlight.js).

import { marked } from 'marked';
import DOMPurify from 'dompurify';
import { format, formatDialect, duckdb, postgresql } from 'sql-formatter';
import hljs from 'highlight.js/lib/core';
import sql from 'highlight.js/lib/languages/sql';

hljs.registerLanguage('sql', sql);
void format;

/** sql-formatter's dialects by the name the data carries (the adapter's Dialect.formatterLanguage). */
const FORMATTER_DIALECTS = { duckdb, postgresql };

export interface PageLib {
  markdown(text: string): DocumentFragment;
  /** `dialect`: sql-formatter's language, as the generated index names it (SiteIndex.sql_dialect). */
  formatSql(text: string, dialect: keyof typeof FORMATTER_DIALECTS): string;
  highlightSql(text: string): DocumentFragment;
}

/** A URL the browser would fetch from another host (or through a scheme such as data: or javascript:). */
const ELSEWHERE = /^\s*([a-z][a-z0-9+.-]*:|\/\/|\\\\)/i;

// The site asks no other host for anything: an image from elsewhere in a description becomes its alt text.
DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  const el = node as Element;
  if (!el.getAttribute) return;
  el.removeAttribute('srcset');
  const src = el.getAttribute('src');
  if (src !== null && ELSEWHERE.test(src)) {
    el.replaceWith(document.createTextNode(el.getAttribute('alt') ?? ''));
  }
});

function fragment(html: string): DocumentFragment {
  const t = document.createElement('template');
  t.innerHTML = html;
  return t.content;
}

const lib: PageLib = {
  markdown(text) {
    const html = marked.parse(text, { async: false, gfm: true }) as string;
    const clean = DOMPurify.sanitize(html, { USE_PROFILES: { html: true }, FORBID_TAGS: ['style', 'form', 'input', 'button', 'video', 'audio', 'source', 'picture', 'iframe', 'object', 'embed', 'link', 'meta'], FORBID_ATTR: ['style'] });
    const frag = fragment(clean);
    // Links from descriptions leave the site: never as the opener.
    for (const a of frag.querySelectorAll('a')) a.setAttribute('rel', 'noopener noreferrer');
    return frag;
  },
  formatSql(text, dialect) {
    try {
      return formatDialect(text, { dialect: FORMATTER_DIALECTS[dialect] ?? duckdb, keywordCase: 'lower' });
    } catch {
      return text; // template leftovers or dialect corners the formatter refuses: shown as written
    }
  },
  highlightSql(text) {
    // highlight.js escapes the text it returns; DOMPurify is a second guard.
    return fragment(DOMPurify.sanitize(hljs.highlight(text, { language: 'sql', ignoreIllegals: true }).value));
  },
};

(window as unknown as { etlPage: PageLib }).etlPage = lib;
