// DOM building without innerHTML: text is always set as text, so nothing a
// project file contains (names, SQL, messages) can become markup. The one
// exception is Markdown, which goes through DOMPurify (lazy.ts).

type Child = Node | string | number | null | undefined | false | Child[];
type Attrs = Record<string, string | number | boolean | null | undefined | ((e: Event) => void)>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function svg(tag: string, attrs?: Attrs | null, ...children: Child[]): SVGElement {
  const el = document.createElementNS(SVG_NS, tag);
  if (attrs) setAttrs(el, attrs);
  append(el, children);
  return el;
}

function setAttrs(el: Element, attrs: Attrs): void {
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (typeof v === 'function') el.addEventListener(k.replace(/^on/, ''), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function append(el: Node, children: Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}

export function clear(el: Element): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function hashLink(route: string): string {
  return `#${route}`;
}

/** "1.23 s", "45 ms", "2 m 3 s" */
export function formatSeconds(s: number): string {
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  return `${Math.floor(s / 60)} m ${Math.round(s % 60)} s`;
}

/** A cost as `etl report` prints it: "1.25 USD", "0.0042 USD". */
export function formatCost(v: number, currency: string): string {
  return `${v.toFixed(v >= 1 || v === 0 ? 2 : 4)} ${currency}`;
}

export function formatAge(seconds: number | null): string {
  if (seconds === null) return 'never loaded';
  if (seconds < 120) return `${Math.round(seconds)} s ago`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h ago`;
  return `${(seconds / 86400).toFixed(1)} days ago`;
}

export function statusBadge(status: string | undefined | null): HTMLElement | null {
  if (!status) return null;
  return h('span', { class: `badge status-${status.replace(/\s+/g, '-')}` }, status);
}

/** A timestamp as the engine or an artifact wrote it, shown in the reader's time zone to the second. */
export function formatTime(text: string | null | undefined): string {
  if (!text) return '';
  const iso = /[zZ]|[+-]\d\d:?\d\d$/.test(text) ? text : `${text.replace(' ', 'T')}Z`;
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? text : d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
}
