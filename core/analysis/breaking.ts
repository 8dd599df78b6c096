// Whether a modified model's change breaks its children: it does when its
// bound columns or their types differ from those recorded in the previous
// manifest (--state). A model whose SQL changed but whose columns did not is
// a non-breaking change; dbt's state:modified cannot tell the two apart.

import type { Manifest } from '../compiler/manifest.js';
import type { BoundColumn } from './binder.js';

/** For each id: true when its columns changed (or were not recorded before), false when they are the same. */
export function breakingChanges(ids: Iterable<string>, columns: Map<string, BoundColumn[]>, state: Manifest, canonical: (t: string) => string): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const id of ids) {
    const now = columns.get(id);
    const before = state.nodes[id];
    if (!before) {
      // A new model: nothing built depends on it yet.
      out.set(id, false);
      continue;
    }
    const old = Object.values(before.columns);
    if (!now || old.length === 0 || old.some((c) => !c.data_type)) {
      out.set(id, true);
      continue;
    }
    const same = now.length === old.length && now.every((c, i) => c.name.toLowerCase() === old[i]!.name.toLowerCase() && canonical(c.type) === canonical(old[i]!.data_type!));
    out.set(id, !same);
  }
  return out;
}
