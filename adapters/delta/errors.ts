// Errors of the Delta protocol library. Each names the table's location and,
// where one is involved, the version, so a user can find the file at fault.

import { RunError } from '../../core/errors.js';

/** The table cannot be read or written as asked (not a Delta table, a gap in the log, a corrupt commit). */
export class DeltaTableError extends RunError {
  constructor(message: string) {
    super(message, 1);
    this.name = 'DeltaTableError';
  }
}

/** The table uses a reader or writer feature etl does not implement: refused rather than misread. */
export class UnsupportedFeatureError extends DeltaTableError {
  constructor(
    readonly feature: string,
    readonly table: string,
    detail = '',
  ) {
    super(`unsupported Delta feature: ${feature} (table ${table})${detail ? `: ${detail}` : ''}`);
    this.name = 'UnsupportedFeatureError';
  }
}

/** Another writer committed a change this commit depends on; retrying blindly would lose or duplicate data. */
export class ConcurrentModificationError extends DeltaTableError {
  constructor(
    readonly table: string,
    readonly version: number,
    readonly ours: string,
    readonly theirs: string,
    readonly reason: string,
  ) {
    super(`conflicting commit on Delta table ${table} at version ${version}: ${ours} conflicts with ${theirs} (${reason})\n  hint: run it again (a model with retries: is re-run by itself); it starts from the new version`);
    this.name = 'ConcurrentModificationError';
  }
}
