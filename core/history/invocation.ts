// The facts of an invocation the audit trail keeps besides what ran: the
// project's git commit and whether tracked files differ from it, the user and
// the host. Read once per run, while the project compiles.

import { execFile } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { RunRecord } from '../state/state.js';

export interface InvocationFacts {
  gitCommit: string | null;
  gitDirty: boolean | null;
  user: string | null;
  host: string;
}

/** The folder holding .git at or above `dir`, if any (no git process for a project outside a repository). */
function gitRoot(dir: string): string | undefined {
  for (let d = path.resolve(dir); ; d = path.dirname(d)) {
    if (existsSync(path.join(d, '.git'))) return d;
    if (path.dirname(d) === d) return undefined;
  }
}

/** HEAD's commit and whether tracked files changed, from one `git status`; nulls without git or a repository. */
export function gitState(dir: string): Promise<{ commit: string | null; dirty: boolean | null }> {
  if (!gitRoot(dir)) return Promise.resolve({ commit: null, dirty: null });
  return new Promise((resolve) => {
    execFile('git', ['-C', dir, 'status', '--porcelain=v2', '--branch', '--untracked-files=no'], { timeout: 5000, windowsHide: true }, (err, stdout) => {
      if (err) return resolve({ commit: null, dirty: null });
      const lines = stdout.split('\n').filter(Boolean);
      const oid = lines.find((l) => l.startsWith('# branch.oid '))?.slice('# branch.oid '.length);
      resolve({ commit: oid && oid !== '(initial)' ? oid : null, dirty: lines.some((l) => !l.startsWith('#')) });
    });
  });
}

function userName(): string | null {
  try {
    return os.userInfo().username;
  } catch {
    return process.env.USER ?? process.env.USERNAME ?? null;
  }
}

export async function invocationFacts(dir: string): Promise<InvocationFacts> {
  const git = await gitState(dir);
  return { gitCommit: git.commit, gitDirty: git.dirty, user: userName(), host: os.hostname() };
}

/** The selection as a user typed it: "-s a b --exclude c". */
export function selectionText(select?: string[], exclude?: string[]): string | null {
  const parts: string[] = [];
  if (select?.length) parts.push(`-s ${select.join(' ')}`);
  if (exclude?.length) parts.push(`--exclude ${exclude.join(' ')}`);
  return parts.length ? parts.join(' ') : null;
}

/** Invocations that could not be written when they happened (the target was busy: see recordSkippedInvocation), written by the next run. */
export const PENDING_HISTORY_FILE = 'history-pending.jsonl';

/** Writes the invocations left pending (see recordSkippedInvocation) with this run's session; the file goes once written. */
export async function flushPendingInvocations(targetPath: string, write: (records: RunRecord[]) => Promise<void>): Promise<void> {
  const file = path.join(targetPath, PENDING_HISTORY_FILE);
  if (!existsSync(file)) return;
  // Taken away first: a record appended meanwhile goes to a new file, for the run after.
  const taken = `${file}.${process.pid}`;
  renameSync(file, taken);
  const records = readFileSync(taken, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((l) => {
      try {
        return [JSON.parse(l) as RunRecord];
      } catch {
        return [];
      }
    });
  try {
    await write(records);
    rmSync(taken);
  } catch (err) {
    appendFileSync(file, readFileSync(taken, 'utf8'));
    rmSync(taken);
    throw err;
  }
}
