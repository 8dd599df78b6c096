#!/usr/bin/env node
// The `etl` command: commander wiring over core/api.ts, nothing more.
// Exit codes: 0 all passed, 1 a node failed, 2 bad usage or bad project.

import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import path from 'node:path';
import { ProjectError, RunError, formatDiagnostic } from '../core/errors.js';
import { ETL_VERSION } from '../core/compiler/version.js';
import type { Secrets } from '../core/project/secrets.js';
import { redact } from '../core/project/secrets.js';

interface GlobalOpts {
  projectDir: string;
  target?: string;
  vars?: string;
  logFormat: 'text' | 'json';
}

interface SelectionOpts {
  select?: string[];
  exclude?: string[];
  state?: string;
}

interface RunOpts extends GlobalOpts, SelectionOpts {
  defer?: boolean;
  favorState?: boolean;
  threads?: number;
  fullRefresh?: boolean;
  failFast?: boolean;
  format?: boolean;
  junit?: string;
  eventTimeStart?: string;
  eventTimeEnd?: string;
  check: boolean;
  checkSources: boolean;
}

let secretsForErrors: Secrets | undefined;

async function parseVars(text: string | undefined): Promise<Record<string, unknown> | undefined> {
  if (!text) return undefined;
  // YAML is a superset of JSON, so both '{"a": 1}' and '{a: 1}' work.
  const { parseYamlValue } = await import('../core/project/yaml.js');
  let value: unknown;
  try {
    value = parseYamlValue(text);
  } catch (err) {
    throw new ProjectError([{ message: `--vars is not valid YAML or JSON: ${(err as Error).message.split('\n')[0]}`, hint: `write --vars '{"start_date": "2024-01-01"}'` }]);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new ProjectError([{ message: '--vars must be a mapping', hint: `write --vars '{"start_date": "2024-01-01"}'` }]);
  }
  return value as Record<string, unknown>;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

function positiveInt(value: string): number {
  const n = Number(value);
  // InvalidArgumentError lets commander print "error: option '--threads <n>' argument '0' is invalid. ...".
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a positive integer, got "${value}"`);
  return n;
}

function addProjectOptions(cmd: Command): Command {
  return cmd
    .option('--project-dir <dir>', 'the project folder (holding etl.yml)', '.')
    .option('-t, --target <name>', 'target from etl.yml to use')
    .option('--vars <yaml>', 'project vars as YAML or JSON, overriding etl.yml')
    .addOption(new Option('--log-format <format>', 'output format').choices(['text', 'json']).default('text'));
}

function addSelectionOptions(cmd: Command): Command {
  return cmd
    .option('-s, --select <selector...>', 'nodes to include (dbt syntax; space-separated terms are unioned)')
    .option('--exclude <selector...>', 'nodes to exclude')
    .option('--state <dir>', 'folder of a previous manifest.json, for state: selectors');
}

function addRunOptions(cmd: Command): Command {
  return addSelectionOptions(addProjectOptions(cmd))
    .option('--threads <n>', 'nodes to run at once (default: the target threads)', positiveInt)
    .option('--full-refresh', 'rebuild incremental models from scratch')
    .option('--fail-fast', 'stop at the first failure')
    .option('--format', 'pretty-print target/compiled/**.sql')
    .option('--junit <path>', 'write a JUnit XML report of the run')
    .option('--event-time-start <time>', 'microbatch models: backfill from this event time (with --event-time-end)')
    .option('--event-time-end <time>', 'microbatch models: backfill up to this event time (exclusive)')
    .option('--no-check', 'skip binding the models against their inputs before the run')
    .option('--no-check-sources', 'a source missing from the target is a warning, not an error')
    .option('--defer', 'refs to unselected models this target lacks read the relations of the --state manifest (slim CI)')
    .option('--favor-state', 'with --defer: read the --state relations of unselected models even when this target has them');
}

async function baseOptions(opts: GlobalOpts) {
  return { projectDir: opts.projectDir, target: opts.target, vars: await parseVars(opts.vars) };
}

async function runCommand(kind: 'build' | 'run' | 'seed' | 'test' | 'retry' | 'snapshot' | 'extract', opts: RunOpts): Promise<number> {
  const [api, { createReporter }, { scanProject }] = await Promise.all([import('../core/api.js'), import('../core/reporting/reporter.js'), import('../core/project/load.js')]);
  const base = await baseOptions(opts);
  // Load once up front so secrets are known before anything is printed.
  const project = scanProject(base.projectDir, { target: base.target, vars: base.vars });
  secretsForErrors = project.secrets;
  // The run's id, made here so that every JSON event carries it, warnings before the run included.
  const runId = (await import('node:crypto')).randomUUID();
  const reporter = await createReporter({ format: opts.logFormat, secrets: project.secrets, runId });
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    reporter.warn('interrupting: cancelling running statements (Ctrl-C again to quit at once)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    const summary = await api[kind]({
      ...base,
      scan: project,
      select: opts.select,
      exclude: opts.exclude,
      state: opts.state,
      defer: opts.defer,
      favorState: opts.favorState,
      threads: opts.threads,
      fullRefresh: opts.fullRefresh,
      failFast: opts.failFast,
      format: opts.format,
      eventTimeStart: opts.eventTimeStart,
      eventTimeEnd: opts.eventTimeEnd,
      check: opts.check,
      noCheckSources: !opts.checkSources,
      onEvent: (e) => reporter.onEvent(e),
      signal: controller.signal,
      job: process.env.ETL_JOB,
      invocationId: runId,
    });
    for (const w of summary.warnings) reporter.warn(w);
    for (const line of await undeliveredAlerts(summary.alerts)) reporter.warn(line);
    reporter.summary(summary.results, summary.elapsedSeconds, summary.interrupted);
    if (opts.junit) {
      const { junitXml } = await import('../core/reporting/junit.js');
      const { writeFileAtomic } = await import('../core/compiler/artifacts.js');
      writeFileAtomic(opts.junit, redact(junitXml(summary.manifest, summary.results, summary.elapsedSeconds), project.secrets));
    }
    if (summary.interrupted) return 130;
    return summary.exitCode;
  } finally {
    reporter.close();
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
}

function buildProgram(): Command {
  const program = new Command('etl')
    .description('Embedded SQL transformations: templated SQL models built into DuckDB, Postgres or Delta Lake.')
    .version(ETL_VERSION)
    .showHelpAfterError()
    .exitOverride();
  program.configureOutput({ outputError: (s, write) => write(s) });

  addRunOptions(program.command('build').description('seed, then build every selected model, in graph order')).action(async (opts: RunOpts) => {
    process.exitCode = await runCommand('build', opts);
  });
  addRunOptions(program.command('extract').description("run the selected loaders: extract from the sources' systems into their raw tables (-s source:crm.customers)")).action(async (opts: RunOpts) => {
    process.exitCode = await runCommand('extract', opts);
  });
  addRunOptions(program.command('run').description('build the selected models')).action(async (opts: RunOpts) => {
    process.exitCode = await runCommand('run', opts);
  });
  addRunOptions(program.command('test').description('run data tests (generic and singular) against what is built')).action(async (opts: RunOpts) => {
    process.exitCode = await runCommand('test', opts);
  });
  addRunOptions(program.command('snapshot').description('record SCD type-2 history of snapshots/*.sql')).action(async (opts: RunOpts) => {
    process.exitCode = await runCommand('snapshot', opts);
  });
  addRunOptions(program.command('retry').description('rerun what failed or was skipped in the last run (microbatch models: only the failed batches)')).action(async (opts: RunOpts) => {
    process.exitCode = await runCommand('retry', opts);
  });
  const state = program.command('state').description('the state etl keeps in the target (etl_meta)');
  addProjectOptions(state.command('show').description('print watermarks, microbatch intervals, snapshot runs and run history')).action(async (opts: GlobalOpts) => {
    const { stateShow } = await import('../core/api.js');
    const { formatTable } = await import('../core/reporting/table.js');
    const tables = await stateShow(await baseOptions(opts));
    if (opts.logFormat === 'json') {
      console.log(JSON.stringify(tables, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
      return;
    }
    for (const [name, t] of Object.entries(tables)) {
      console.log(`etl_meta ${name}:`);
      console.log(formatTable(t.columns, t.rows));
      console.log('');
    }
  });
  const history = addSelectionOptions(addProjectOptions(program.command('history').description('the run history and audit trail kept in the target: runs, or with -s the attempts of those nodes')))
    .option('--since <when>', 'runs started since: 7d, 12h, 30m, 2w, or a date')
    .option('--limit <n>', 'newest runs only (default 50; 0: all)', (v) => (v === '0' ? 0 : positiveInt(v)))
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'))
    .action(async (opts: GlobalOpts & SelectionOpts & { since?: string; limit?: number; output: string }) => {
      const [{ readHistory, parseSince }, { formatRuns, formatNodeRuns }] = await Promise.all([import('../core/history/history.js'), import('../core/reporting/history.js')]);
      const since = opts.since ? parseSince(opts.since, '--since') : undefined;
      const rows = await readHistory({ ...(await baseOptions(opts)), select: opts.select, exclude: opts.exclude, since, limit: opts.limit === 0 ? undefined : (opts.limit ?? 50) });
      if (opts.output === 'json' || opts.logFormat === 'json') return console.log(JSON.stringify(rows));
      console.log(opts.select?.length ? formatNodeRuns(rows) : formatRuns(rows));
    });
  addProjectOptions(history.command('prune').description('delete the runs (and their node attempts) older than --older-than: the only way history rows leave'))
    .requiredOption('--older-than <age>', 'e.g. 90d, 12w, or a date')
    .action(async (opts: GlobalOpts & { olderThan: string }) => {
      const { pruneHistory, parseSince } = await import('../core/history/history.js');
      const before = parseSince(opts.olderThan, '--older-than');
      const r = await pruneHistory({ ...(await baseOptions(opts)), before });
      if (opts.logFormat === 'json') return console.log(JSON.stringify({ event: 'history_pruned', before, ...r }));
      console.log(`pruned ${r.runs} run${r.runs === 1 ? '' : 's'} and ${r.node_runs} node attempt${r.node_runs === 1 ? '' : 's'} that started before ${before}`);
    });
  addProjectOptions(program.command('report').description('cost and time from the run history: top models by cost and time, success rate, p50/p95 duration, failures, trend against the previous period, budget'))
    .option('--since <when>', 'the period: since 30d (default), 12h, 2w, or a date; compared with the period as long before it', '30d')
    .addOption(new Option('--by <what>', 'group by').choices(['model', 'tag', 'folder', 'job']).default('model'))
    .option('--limit <n>', 'groups printed (default 20; 0: all)', (v) => (v === '0' ? 0 : positiveInt(v)))
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'))
    .action(async (opts: GlobalOpts & { since: string; by: 'model' | 'tag' | 'folder' | 'job'; limit?: number; output: string }) => {
      const [{ parseSince }, { costReport }, { formatReport }] = await Promise.all([import('../core/history/history.js'), import('../core/history/report.js'), import('../core/reporting/report.js')]);
      const report = await costReport({ ...(await baseOptions(opts)), since: parseSince(opts.since, '--since'), by: opts.by });
      if (opts.output === 'json' || opts.logFormat === 'json') return console.log(JSON.stringify(report));
      console.log(formatReport(report, opts.limit === 0 ? Infinity : (opts.limit ?? 20)));
    });
  const delta = program.command('delta').description('maintenance of the Delta tables of a delta target');
  addSelectionOptions(addProjectOptions(delta.command('history').description('list the versions of a Delta table (-s model)')))
    .option('--limit <n>', 'newest versions only', positiveInt)
    .action(async (opts: GlobalOpts & { select?: string[]; exclude?: string[]; limit?: number }) => {
      const [{ deltaHistory }, { formatTable }] = await Promise.all([import('../core/delta.js'), import('../core/reporting/table.js')]);
      const tables = await deltaHistory({ ...(await baseOptions(opts)), select: opts.select, exclude: opts.exclude, limit: opts.limit });
      if (opts.logFormat === 'json') return console.log(JSON.stringify(tables));
      for (const t of tables) {
        console.log(`${t.table}:`);
        console.log(formatTable(['version', 'timestamp', 'operation', 'parameters', 'writer', 'node'], t.result.map((h) => [h.version, new Date(h.timestamp).toISOString(), h.operation ?? '', JSON.stringify(h.operationParameters ?? {}), h.writer ?? '', h.nodeId ?? ''])));
      }
    });
  addSelectionOptions(addProjectOptions(delta.command('vacuum').description('delete data files no version within the retention needs (all tables, or -s)')))
    .option('--retain <duration>', "keep files removed less than this long ago, e.g. 168h or 7d (default: the table's delta.deletedFileRetentionDuration)")
    .option('--force', "allow a retention shorter than the table's")
    .option('--dry-run', 'list the files without deleting them')
    .action(async (opts: GlobalOpts & { select?: string[]; exclude?: string[]; retain?: string; force?: boolean; dryRun?: boolean }) => {
      const { deltaVacuum } = await import('../core/delta.js');
      const tables = await deltaVacuum({ ...(await baseOptions(opts)), select: opts.select, exclude: opts.exclude, retain: opts.retain, force: opts.force, dryRun: opts.dryRun });
      if (opts.logFormat === 'json') return console.log(JSON.stringify(tables));
      for (const t of tables) console.log(`${t.table}: ${opts.dryRun ? 'would delete' : 'deleted'} ${t.result.deleted.length} files (retention ${t.result.retentionHours}h)`);
    });
  addSelectionOptions(addProjectOptions(delta.command('optimize').description('compact small files into ~128 MB ones, one commit per table (all tables, or -s)')))
    .option('--target-size <bytes>', 'the file size to compact to', positiveInt)
    .action(async (opts: GlobalOpts & { select?: string[]; exclude?: string[]; targetSize?: number }) => {
      const { deltaOptimize } = await import('../core/delta.js');
      const tables = await deltaOptimize({ ...(await baseOptions(opts)), select: opts.select, exclude: opts.exclude, targetFileSize: opts.targetSize });
      if (opts.logFormat === 'json') return console.log(JSON.stringify(tables));
      for (const t of tables) console.log(`${t.table}: ${t.result.filesRemoved} files compacted into ${t.result.filesAdded}${t.result.commit ? ` (version ${t.result.commit.version})` : ''}`);
    });
  addRunOptions(program.command('seed').description('load seeds/**/*.csv into the target')).action(async (opts: RunOpts) => {
    process.exitCode = await runCommand('seed', opts);
  });

  addSelectionOptions(addProjectOptions(program.command('compile').description('write target/manifest.json and target/compiled/**.sql; touches no database (with --check: reads its catalog)')))
    .option('--format', 'pretty-print the compiled SQL with sql-formatter')
    .option('--no-cache', 'ignore the compile cache')
    .option('--check', "bind every model's SQL against its inputs' schemas: unknown columns, type errors and broken contracts, before anything runs")
    .option('--no-check-sources', 'with --check: a source missing from the target is a warning, not an error')
    .action(async (opts: GlobalOpts & SelectionOpts & { format?: boolean; cache: boolean; check?: boolean; checkSources: boolean }) => {
      const { compile } = await import('../core/api.js');
      const t0 = performance.now();
      const result = await compile({ ...(await baseOptions(opts)), format: opts.format, noCache: !opts.cache, check: opts.check, noCheckSources: !opts.checkSources });
      const { nodeCount: n, cached, check } = result;
      const line = `Compiled ${n} node${n === 1 ? '' : 's'} in ${((performance.now() - t0) / 1000).toFixed(2)}s${cached ? ' (unchanged, from cache)' : ''}`;
      if (opts.logFormat === 'json') {
        console.log(JSON.stringify({ event: 'compiled', nodes: n, cached, ...(check ? { check: { ...check.stats, unchecked: check.unchecked, schema_changes: check.schemaChanges, warnings: check.warnings } } : {}) }));
        return;
      }
      console.log(line);
      if (!check) return;
      for (const w of check.warnings) console.error(`warning: ${w}`);
      const s = check.stats;
      console.log(`Checked ${s.models} model${s.models === 1 ? '' : 's'} in ${s.seconds.toFixed(2)}s: ${s.bound} bound, ${s.cached} unchanged (cached), ${check.unchecked.length} unchecked`);
      for (const u of check.unchecked) console.log(`  unchecked ${result.manifest.nodes[u.unique_id]?.name ?? u.unique_id}: ${u.reason}`);
      for (const c of check.schemaChanges) {
        const parts = [...c.added.map((x) => `+${x}`), ...c.removed.map((x) => `-${x}`), ...c.retyped.map((x) => `~${x}`)];
        console.log(`  ${result.manifest.nodes[c.unique_id]?.name ?? c.unique_id} (incremental) will change columns on its next run: ${parts.join(' ')} (on_schema_change: ${result.manifest.nodes[c.unique_id]?.config.on_schema_change ?? 'ignore'})`);
      }
    });

  addProjectOptions(program.command('lineage').description("a column's upstream and downstream columns (column-level lineage from the compiled SQL)"))
    .requiredOption('-s, --select <model.column>', 'the column, e.g. orders.amount (a source: raw.orders.id)')
    .option('--upstream', 'only the columns it derives from')
    .option('--downstream', 'only the columns derived from it')
    .addOption(new Option('-o, --output <format>', 'text or json').choices(['text', 'json']).default('text'))
    .action(async (opts: GlobalOpts & { select: string; upstream?: boolean; downstream?: boolean; output: string }) => {
      const [{ columnLineage }, { findColumn, traceColumn, formatTrace }] = await Promise.all([import('../core/api.js'), import('../core/analysis/lineage-query.js')]);
      const { manifest, lineage } = await columnLineage(await baseOptions(opts));
      const found = findColumn(manifest, lineage, opts.select);
      if ('error' in found) throw new ProjectError([{ message: found.error, hint: found.hint }]);
      const both = !opts.upstream && !opts.downstream;
      const trace = traceColumn(lineage, found.column, { upstream: both || !!opts.upstream, downstream: both || !!opts.downstream });
      if (opts.output === 'json' || opts.logFormat === 'json') console.log(JSON.stringify(trace));
      else console.log(formatTrace(manifest, trace));
    });

  addSelectionOptions(addProjectOptions(program.command('ls').alias('list').description('list the selected nodes')))
    .addOption(new Option('--resource-type <type>', 'only this resource type (repeatable)').choices(['model', 'seed', 'snapshot', 'test', 'loader']).argParser(collect as never))
    .addOption(new Option('-o, --output <format>', 'what to print per node').choices(['selector', 'name', 'path', 'json']).default('selector'))
    .action(async (opts: GlobalOpts & SelectionOpts & { resourceType?: Array<'model' | 'seed' | 'snapshot' | 'test' | 'loader'>; output: string }) => {
      const { list } = await import('../core/api.js');
      // With --state, json output says whether each model's change breaks its children (its bound columns changed).
      const { manifest, ids, warnings, breaking } = await list({ ...(await baseOptions(opts)), select: opts.select, exclude: opts.exclude, state: opts.state, resourceTypes: opts.resourceType, breaking: opts.output === 'json' && !!opts.state, columns: opts.output === 'json' });
      for (const w of warnings) console.error(`warning: ${w}`);
      for (const id of ids) {
        const node = manifest.nodes[id]!;
        if (opts.output === 'name') console.log(node.name);
        else if (opts.output === 'path') console.log(node.original_file_path);
        else if (opts.output === 'json') console.log(JSON.stringify({ unique_id: id, name: node.name, resource_type: node.unit_test ? 'unit_test' : node.resource_type, config: { materialized: node.config.materialized, tags: node.tags }, original_file_path: node.original_file_path, depends_on: node.depends_on.nodes, columns: Object.values(node.columns).map((c) => ({ name: c.name, data_type: c.data_type ?? null })), ...(breaking?.has(id) ? { breaking: breaking.get(id) } : {}) }));
        else console.log(node.fqn.join('.'));
      }
    });

  addSelectionOptions(addProjectOptions(program.command('show').description("run a node's compiled SQL and print the first rows")))
    .option('--inline <sql>', 'run this SQL instead of a node')
    .option('--limit <n>', 'rows to print', positiveInt, 10)
    .action(async (opts: GlobalOpts & SelectionOpts & { inline?: string; limit: number }) => {
      const { show } = await import('../core/api.js');
      const { formatTable } = await import('../core/reporting/table.js');
      if (!opts.inline && !opts.select?.length) throw new ProjectError([{ message: 'show needs --select <node> or --inline <sql>', hint: 'e.g. etl show -s orders --limit 5' }]);
      const result = await show({ ...(await baseOptions(opts)), select: opts.select, exclude: opts.exclude, inline: opts.inline, limit: opts.limit });
      if (opts.logFormat === 'json') {
        console.log(JSON.stringify({ node: result.node, columns: result.columns, rows: result.rows }, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)));
      } else {
        if (result.node) console.log(`Previewing ${result.node} (first ${opts.limit} rows):`);
        console.log(formatTable(result.columns, result.rows));
      }
    });

  const source = program.command('source').description('commands about declared sources');
  addProjectOptions(source.command('freshness').description('check how recently each source was loaded (warn_after / error_after); writes target/sources.json'))
    .option('-s, --select <selector>', 'sources to check: source:raw or source:raw.orders (repeatable)', collect)
    .action(async (opts: GlobalOpts & { select?: string[] }) => {
      const { sourceFreshness } = await import('../core/api.js');
      const summary = await sourceFreshness({ ...(await baseOptions(opts)), select: opts.select, job: process.env.ETL_JOB });
      for (const line of await undeliveredAlerts(summary.alerts)) console.error(`warning: ${line}`);
      for (const r of summary.results) {
        const name = r.unique_id.split('.').slice(2).join('.');
        if (opts.logFormat === 'json') console.log(JSON.stringify({ event: 'source_freshness', ...r }));
        else {
          const ago = r.max_loaded_at_time_ago_in_s === null ? 'never loaded' : `loaded ${formatAge(r.max_loaded_at_time_ago_in_s)} ago`;
          console.log(`${r.status.toUpperCase().padEnd(5)} ${name}: ${r.error ?? ago} (warn after ${r.criteria.warn_after ?? '-'}, error after ${r.criteria.error_after ?? '-'})`);
        }
      }
      if (summary.results.length === 0) console.log('No source declares freshness with a loaded_at_field.');
      process.exitCode = summary.exitCode;
    });

  program
    .command('init')
    .description('create a new project from the template')
    .argument('[dir]', 'folder to create', 'my_project')
    .action(async (dir: string) => {
      const { initProject } = await import('../core/init.js');
      const created = initProject(dir);
      console.log(`Created project ${created.name} in ${created.dir}\nNext: etl build --project-dir ${dir}`);
    });

  addProjectOptions(program.command('format').description('format model files in place with sql-formatter, keeping template tags intact'))
    .option('--check', 'write nothing; exit 1 if a file would change')
    .argument('[files...]', 'files to format (default: every models/ and snapshots/ file)')
    .action(async (files: string[], opts: GlobalOpts & { check?: boolean }) => {
      const { formatProjectFiles } = await import('../core/format-files.js');
      const report = formatProjectFiles(opts.projectDir, { files, check: opts.check ?? false, target: opts.target });
      for (const f of report.skipped) console.error(`warning: ${f.path}: ${f.reason}; left as is`);
      for (const f of report.changed) console.log(`${opts.check ? 'would format' : 'formatted'} ${f}`);
      console.log(`${report.changed.length} of ${report.total} file${report.total === 1 ? '' : 's'} ${opts.check ? 'need formatting' : 'formatted'}`);
      if (opts.check && report.changed.length) process.exitCode = 1;
    });

  addProjectOptions(program.command('schedule').description("run the jobs of etl.yml (jobs:) on their cron schedules until SIGTERM/SIGINT"))
    .option('--once <job>', 'run this job once, now, and exit with its run\'s exit code (for cron, a Kubernetes CronJob, Airflow)')
    .option('--list', 'print the next fire times of each job and exit')
    .option('--count <n>', 'with --list: how many fire times per job', positiveInt, 3)
    .action(async (opts: GlobalOpts & { once?: string; list?: boolean; count: number }) => {
      const schedule = await import('../core/schedule/index.js');
      const json = opts.logFormat === 'json';
      const base = { projectDir: opts.projectDir, target: opts.target, varsText: opts.vars, etl: [process.execPath, ...process.execArgv, process.argv[1]!], logFormat: opts.logFormat };
      if (opts.list) {
        const rows = schedule.listSchedule({ ...base, count: opts.count });
        if (json) {
          for (const { job, next } of rows) console.log(JSON.stringify({ event: 'schedule_next', job: job.name, cron: job.cron, timezone: job.timezone ?? null, command: job.command, sla: job.sla ?? null, catchup: job.catchup, next: next.map((d) => d.toISOString()) }));
          return;
        }
        for (const { job, next } of rows) {
          console.log(`${job.name}: "${job.cron}" in ${job.timezone ?? `${localZone()} (the machine's zone)`}, runs \`etl ${job.command}\`${job.sla ? `, sla ${job.sla}` : ''}${job.catchup ? ', catches up' : ''}`);
          for (const d of next) console.log(`  ${localTime(d, job.timezone)}  (${d.toISOString()})`);
        }
        return;
      }
      const log = (e: import('../core/schedule/index.js').ScheduleEvent) => {
        if (json) return console.log(JSON.stringify({ ...e, type: undefined, event: `schedule_${e.type}` }));
        const when = new Date().toISOString();
        if (e.type === 'next') console.log(`${when} ${e.job}: next run at ${e.at}`);
        else if (e.type === 'started') console.log(`${when} ${e.job}: started${e.catchup ? ` (catching up the run missed at ${e.slot})` : ''}`);
        else if (e.type === 'finished') console.log(`${when} ${e.job}: finished with exit code ${e.exit_code} in ${e.seconds.toFixed(1)}s`);
        else if (e.type === 'skipped') console.log(`${when} ${e.job}: skipped the run of ${e.slot}: ${e.reason}`);
        else console.log(`${when} stopping${e.running.length ? `: waiting for ${e.running.join(', ')} to stop cleanly` : ''}`);
      };
      const controller = new AbortController();
      let signals = 0;
      const onSignal = () => {
        // The first stops the scheduler and cancels the running runs cleanly; a second quits at once.
        if (++signals > 1) process.exit(130);
        controller.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const options = { ...base, signal: controller.signal, onEvent: opts.once ? (e: import('../core/schedule/index.js').ScheduleEvent) => e.type === 'skipped' && log(e) : log, onWarning: (m: string) => console.error(`warning: ${m}`) };
        if (opts.once) process.exitCode = await schedule.runJobOnce({ ...options, job: opts.once });
        else await schedule.runSchedule(options);
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });

  const docs = program.command('docs').description('the lineage docs site in target/docs');
  addProjectOptions(docs.command('generate').description('write target/docs: a static site (works from file:// and any static host)'))
    .option('--no-history', "leave out the run history kept in the target")
    .action(async (opts: GlobalOpts & { history: boolean }) => {
      const { generateDocs } = await import('../core/docs/generate.js');
      const t0 = performance.now();
      const r = await generateDocs({ ...(await baseOptions(opts)), history: opts.history });
      for (const w of r.warnings) console.error(`warning: ${w}`);
      console.log(`Wrote the docs of ${r.nodes} node${r.nodes === 1 ? '' : 's'} to ${path.relative(process.cwd(), r.dir) || '.'} in ${((performance.now() - t0) / 1000).toFixed(2)}s; open ${path.join(path.relative(process.cwd(), r.dir) || '.', 'index.html')}`);
    });
  addProjectOptions(docs.command('serve').description('serve target/docs on 127.0.0.1 and regenerate it when project files change'))
    .option('--port <n>', 'port to listen on (0: any free port)', (v: string) => (v === '0' ? 0 : positiveInt(v)), 8080)
    .option('--no-history', "leave out the run history kept in the target")
    .action(async (opts: GlobalOpts & { port: number; history: boolean }) => {
      const { serveDocs } = await import('../core/docs/serve.js');
      const server = await serveDocs({
        ...(await baseOptions(opts)),
        history: opts.history,
        port: opts.port,
        onGenerate: (r) => {
          if (r instanceof Error) console.error(`docs not regenerated: ${r.message}`);
          else {
            for (const w of r.warnings) console.error(`warning: ${w}`);
            console.log(`${new Date().toLocaleTimeString()} generated the docs of ${r.nodes} nodes`);
          }
        },
      });
      console.log(`Serving the docs at ${server.url} (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        const stop = () => void server.close().then(resolve);
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
    });

  addProjectOptions(program.command('debug').description('show the resolved project and target, and test the connection')).action(async (opts: GlobalOpts) => {
    const { debugProject } = await import('../core/debug.js');
    const report = await debugProject(await baseOptions(opts));
    secretsForErrors = report.secrets;
    for (const line of report.lines) console.log(redact(line, report.secrets));
    // An unreachable target is a problem with the project's settings: exit 2, as build does.
    process.exitCode = report.ok ? 0 : 2;
  });

  addProjectOptions(program.command('clean').description('delete generated artifacts in target/ (database files are kept)')).action(async (opts: GlobalOpts) => {
    const { cleanProject } = await import('../core/debug.js');
    const removed = cleanProject(opts.projectDir);
    console.log(`Removed ${removed.length} path${removed.length === 1 ? '' : 's'} from target/`);
  });
  return program;
}

/** Alerts that could not be delivered: said as warnings, never errors (the run's outcome stands). */
async function undeliveredAlerts(alerts: Array<import('../core/alerts/index.js').AlertDelivery>): Promise<string[]> {
  const failed = alerts.filter((a) => !a.delivered);
  if (failed.length === 0) return [];
  const { describeUndelivered } = await import('../core/alerts/index.js');
  return failed.map(describeUndelivered);
}

function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

/** "2026-12-06 02:00 Europe/Berlin": a fire time as the job's zone reads it. */
function localTime(d: Date, zone: string | undefined): string {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-CA', { timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23', timeZoneName: 'short' }).formatToParts(d).map((p) => [p.type, p.value]));
  const seconds = parts.second === '00' ? '' : `:${parts.second}`;
  return `${parts.year}-${parts.month}-${parts.day} ${parts.hour}:${parts.minute}${seconds} ${parts.timeZoneName}`;
}

function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)}m`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)}h`;
  return `${(seconds / 86400).toFixed(1)}d`;
}

async function main(argv: string[]): Promise<void> {
  // `etl build | head`: once the reader has gone, drop further output instead of
  // crashing mid-run on an unhandled EPIPE; the run itself goes on to the end.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
    });
  }
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    process.exitCode = reportError(err);
  }
}

function reportError(err: unknown): number {
  if (err instanceof CommanderError) {
    // Help and version are not errors; everything else commander rejects is bad usage.
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
    return 2;
  }
  if (err instanceof ProjectError) {
    const n = err.diagnostics.length;
    console.error(redact(`${n === 1 ? 'Error' : `${n} errors`} in the project:\n${err.diagnostics.map((d) => formatDiagnostic(d)).join('\n')}`, secretsForErrors));
    return 2;
  }
  if (err instanceof RunError) {
    console.error(redact(`Error: ${err.message}`, secretsForErrors));
    return err.exitCode;
  }
  console.error(redact(`Internal error: ${(err as Error)?.stack ?? String(err)}`, secretsForErrors));
  return 1;
}

void main(process.argv);
