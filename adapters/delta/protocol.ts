// Which tables etl may read and write (PROTOCOL.md "Protocol Evolution",
// "Table Features", "Writer/Reader Version Requirements"), and the protocol a
// new table gets: writer 2 / reader 1 unless a feature needs (3, 7). A
// feature etl does not implement is refused by name, never ignored.

import type { Metadata, Protocol } from './actions.js';
import { UnsupportedFeatureError, DeltaTableError } from './errors.js';
import { type StructType, type DeltaType, usesTimestampNtz } from './schema.js';

/** Reader features etl reads correctly. */
const READER_FEATURES = new Set(['timestampNtz', 'vacuumProtocolCheck', 'deletionVectors']);

/** Writer features etl writes correctly, given the checks in checkWritable. */
const WRITER_FEATURES = new Set(['appendOnly', 'invariants', 'timestampNtz', 'domainMetadata', 'vacuumProtocolCheck', 'changeDataFeed', 'checkConstraints', 'generatedColumns', 'identityColumns', 'columnMapping', 'deletionVectors']);

function columnMappingMode(metadata: Metadata): string {
  return metadata.configuration['delta.columnMapping.mode'] ?? 'none';
}

/** Refuses a table etl cannot read correctly. */
export function checkReadable(protocol: Protocol, metadata: Metadata, table: string): void {
  const r = protocol.minReaderVersion;
  if (!Number.isInteger(r) || r < 1 || r > 3) {
    throw new DeltaTableError(`Delta table ${table} needs reader version ${r}; etl reads versions 1 to 3\n  hint: the table was written by a newer Delta writer; read it with one that supports this version`);
  }
  if (r === 3) {
    for (const f of protocol.readerFeatures ?? []) {
      if (f === 'columnMapping' && columnMappingMode(metadata) === 'none') continue;
      if (!READER_FEATURES.has(f)) throw new UnsupportedFeatureError(f, table);
    }
  }
  // Reader version 2 is column mapping; a table that enabled it but maps nothing reads as usual.
  if (r >= 2 && columnMappingMode(metadata) !== 'none') throw new UnsupportedFeatureError('columnMapping', table, `mode ${columnMappingMode(metadata)}`);
  if (metadata.format.provider !== 'parquet') throw new DeltaTableError(`Delta table ${table} stores its data as ${metadata.format.provider}; etl reads parquet only`);
}

function anyField(t: DeltaType, test: (metadata: Record<string, unknown>) => boolean): boolean {
  if (typeof t === 'string') return false;
  if (t.type === 'struct') return t.fields.some((f) => test(f.metadata) || anyField(f.type, test));
  if (t.type === 'array') return anyField(t.elementType, test);
  return anyField(t.keyType, test) || anyField(t.valueType, test);
}

/**
 * Refuses a table etl cannot write correctly: an unknown writer feature, or a
 * known one that is active and that etl does not enforce (invariants, CHECK
 * constraints, generated and identity columns, change data feed, append-only
 * for a change that removes data).
 */
export function checkWritable(protocol: Protocol, metadata: Metadata, schema: StructType, table: string, options: { removesData?: boolean } = {}): void {
  checkReadable(protocol, metadata, table);
  const w = protocol.minWriterVersion;
  if (!Number.isInteger(w) || w < 1 || w > 7) throw new DeltaTableError(`Delta table ${table} needs writer version ${w}; etl writes versions 1 to 7`);
  if (w === 7) for (const f of protocol.writerFeatures ?? []) if (!WRITER_FEATURES.has(f)) throw new UnsupportedFeatureError(f, table, 'etl cannot write this table');
  const has = (feature: string, sinceVersion: number) => (w === 7 ? (protocol.writerFeatures ?? []).includes(feature) : w >= sinceVersion);
  const config = metadata.configuration;
  if (has('appendOnly', 2) && config['delta.appendOnly'] === 'true' && options.removesData) {
    throw new DeltaTableError(`Delta table ${table} is append-only (delta.appendOnly = true): this change would remove data\n  hint: use an append, or unset delta.appendOnly on the table`);
  }
  if (has('invariants', 2) && anyField(schema, (m) => 'delta.invariants' in m)) throw new UnsupportedFeatureError('invariants', table, 'a column has delta.invariants, which etl does not enforce');
  if (has('checkConstraints', 3) && Object.keys(config).some((k) => k.startsWith('delta.constraints.'))) throw new UnsupportedFeatureError('checkConstraints', table, 'the table has CHECK constraints, which etl does not enforce');
  if (has('generatedColumns', 4) && anyField(schema, (m) => 'delta.generationExpression' in m)) throw new UnsupportedFeatureError('generatedColumns', table);
  if (has('changeDataFeed', 4) && config['delta.enableChangeDataFeed'] === 'true') throw new UnsupportedFeatureError('changeDataFeed', table, 'etl does not write change data files');
  if (has('identityColumns', 6) && anyField(schema, (m) => Object.keys(m).some((k) => k.startsWith('delta.identity.')))) throw new UnsupportedFeatureError('identityColumns', table);
}

/** The protocol a table with `schema` needs: (1, 2), or (3, 7) with exactly the features in use. */
export function protocolFor(schema: StructType, options: { domainMetadata?: boolean; deletionVectors?: boolean; current?: Protocol } = {}): Protocol {
  const readerFeatures = new Set<string>();
  const writerFeatures = new Set<string>();
  if (usesTimestampNtz(schema)) {
    readerFeatures.add('timestampNtz');
    writerFeatures.add('timestampNtz');
  }
  if (options.deletionVectors) {
    readerFeatures.add('deletionVectors');
    writerFeatures.add('deletionVectors');
  }
  if (options.domainMetadata) writerFeatures.add('domainMetadata');
  const current = options.current;
  // Features are never dropped from an existing table.
  if (current?.minWriterVersion === 7) for (const f of current.writerFeatures ?? []) writerFeatures.add(f);
  if (current?.minReaderVersion === 3) for (const f of current.readerFeatures ?? []) readerFeatures.add(f);
  if (writerFeatures.size === 0 && (!current || current.minWriterVersion < 7)) {
    return { minReaderVersion: Math.max(1, current?.minReaderVersion ?? 1), minWriterVersion: Math.max(2, current?.minWriterVersion ?? 2) };
  }
  // An existing table's implicit features (versions 2 to 6) become explicit on the move to 7.
  if (current && current.minWriterVersion < 7) {
    const implicit: Array<[number, string]> = [
      [2, 'appendOnly'],
      [2, 'invariants'],
      [3, 'checkConstraints'],
      [4, 'changeDataFeed'],
      [4, 'generatedColumns'],
      [5, 'columnMapping'],
      [6, 'identityColumns'],
    ];
    for (const [v, f] of implicit) if (current.minWriterVersion >= v) writerFeatures.add(f);
  }
  if (readerFeatures.size > 0 || (current?.minReaderVersion ?? 1) >= 3) {
    return { minReaderVersion: 3, minWriterVersion: 7, readerFeatures: [...readerFeatures].sort(), writerFeatures: [...writerFeatures].sort() };
  }
  return { minReaderVersion: Math.max(1, current?.minReaderVersion ?? 1), minWriterVersion: 7, writerFeatures: [...writerFeatures].sort() };
}

export function sameProtocol(a: Protocol, b: Protocol): boolean {
  const set = (x?: string[]) => JSON.stringify([...(x ?? [])].sort());
  return a.minReaderVersion === b.minReaderVersion && a.minWriterVersion === b.minWriterVersion && set(a.readerFeatures) === set(b.readerFeatures) && set(a.writerFeatures) === set(b.writerFeatures);
}
