// Finding a project's files, and the content checksums of large ones.
//
// Listing: one recursive readdir per folder, shared by every pattern asked of
// it (glob walked the models folder once per pattern and cost 15 ms for 200
// files, a good part of a short run).
//
// Checksums: a seed of 50 MB took ~0.1 s to read and hash on every run only
// to learn that it had not changed. Its (size, mtime) stamp, kept in
// target/.etl/file-stamps.json, stands for the content, as in git's index:
// trusted only when the file was last modified well before it was hashed, so
// a write racing the hash (or a coarse file-system clock) never hides a change.

import { isUtf8 } from 'node:buffer';
import { hash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * Files under `dir`, relative to it with forward slashes, sorted. Hidden files
 * and folders are left out, and symlinked folders are not followed, as with
 * glob's `**`.
 */
export function filesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (abs: string, rel: string) => {
    let entries;
    try {
      entries = readdirSync(abs, { withFileTypes: true });
    } catch {
      return; // a folder that does not exist holds no files
    }
    for (const e of entries) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) walk(path.join(abs, e.name), r);
      else if (e.isFile() || (e.isSymbolicLink() && isFile(path.join(abs, e.name)))) out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

function isFile(p: string): boolean {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

export interface FileStamp {
  size: number;
  mtimeMs: number;
  /** Date.now() just before the file was read for this checksum. */
  hashedAt: number;
  checksum: string;
}

/** A file modified less than this before it was hashed is hashed again next time. */
const RACY_MS = 50;

export const STAMPS_FILE = path.join('.etl', 'file-stamps.json');

export function readStamps(targetPath: string): Record<string, FileStamp> {
  try {
    return JSON.parse(readFileSync(path.join(targetPath, STAMPS_FILE), 'utf8')) as Record<string, FileStamp>;
  } catch {
    return {};
  }
}

/**
 * The sha256 of a file's content, from its stamp when size and mtime match a
 * trustworthy one; otherwise read and hashed, and `stamps` updated.
 * Returns whether the stamps changed.
 */
export function checksumOf(absPath: string, key: string, stamps: Record<string, FileStamp>): { checksum: string; changed: boolean } {
  const st = statSync(absPath);
  const s = stamps[key];
  if (s && s.size === st.size && s.mtimeMs === st.mtimeMs && st.mtimeMs < s.hashedAt - RACY_MS) return { checksum: s.checksum, changed: false };
  const hashedAt = Date.now();
  const checksum = hash('sha256', readFileSync(absPath), 'hex');
  stamps[key] = { size: st.size, mtimeMs: st.mtimeMs, hashedAt, checksum };
  return { checksum, changed: true };
}

/**
 * A text file of the project as a string. Bytes that are not UTF-8 would be
 * read as U+FFFD and land in compiled SQL unseen, so they are a problem named
 * by line and column (the first bad byte), and the text is still returned.
 */
export function readProjectText(absPath: string): { text: string; invalidAt?: { line: number; col: number } } {
  const bytes = readFileSync(absPath);
  const text = bytes.toString('utf8');
  if (isUtf8(bytes)) return { text };
  return { text, invalidAt: firstInvalidUtf8(bytes) };
}

/** Line and column (in characters) of the first byte sequence that is not UTF-8; undefined when all are. */
export function firstInvalidUtf8(bytes: Buffer): { line: number; col: number } | undefined {
  if (isUtf8(bytes)) return undefined;
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    const len = b < 0x80 ? 1 : b >= 0xc2 && b <= 0xdf ? 2 : b >= 0xe0 && b <= 0xef ? 3 : b >= 0xf0 && b <= 0xf4 ? 4 : 0;
    if (len === 0 || !isUtf8(bytes.subarray(i, i + len))) break;
    i += len;
  }
  const lines = bytes.subarray(0, i).toString('utf8').split('\n');
  return { line: lines.length, col: lines[lines.length - 1]!.length + 1 };
}
