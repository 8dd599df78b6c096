import path from 'node:path';
import { relationOf, type Materialization } from './materialization.js';

/** A CSV loaded by the engine's own reader (DuckDB read_csv, Postgres COPY). */
export const seed: Materialization = {
  run: ({ adapter, session, node, manifest }) =>
    adapter.loadSeed(session, relationOf(node), path.join(manifest.metadata.project_root, node.original_file_path), {
      columnTypes: node.config.column_types ?? {},
      delimiter: node.config.delimiter,
      path: node.original_file_path,
    }),
};
