// Static analysis on a Delta target: Delta's SQL is DuckDB's, so the check
// binds as on DuckDB, and the shared suite of issue #16
// (tests/analysis/check-suite.ts) runs here whole: the corpus stops `etl
// build` before the lake is made, and the bound types are those of the
// built tables' Delta logs.

import { describeCheckOn } from './analysis/check-suite.js';
import { deltaTarget } from './analysis/check-targets.js';

describeCheckOn('delta', deltaTarget);
