// Every byte of a Delta table goes through this interface: the log code never
// touches the file system itself, so object storage (S3, Azure Blob/ADLS with
// conditional writes for putIfAbsent) can be added behind it later without
// changing the log, reader or writer. Paths are relative to the table root,
// with '/' separators. (The lake's folders of schemas and tables are listed
// through it too, with the lake as root. A checkpoint is made by DuckDB in a
// local scratch folder, then written through write().)

import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';

export interface StoredFile {
  /** Relative to the table root, '/'-separated. */
  path: string;
  size: number;
  /** Milliseconds since the epoch. */
  modificationTime: number;
}

export interface ListOptions {
  recursive?: boolean;
  /** A file name in `dir`: only later names (byte order) are listed. Not with recursive. */
  startAfter?: string;
}

export interface DeltaStorage {
  /** Where the table lives, for messages. */
  readonly root: string;
  /**
   * Files in `dir` (non-recursive unless asked), sorted by path; [] when `dir`
   * does not exist. `startAfter` skips names up to and including it (as an
   * object store's paginated listing does), so a long log is not listed whole.
   */
  list(dir: string, options?: ListOptions): Promise<StoredFile[]>;
  /** The names of the folders in `dir` (an object store's common prefixes), sorted; [] when `dir` does not exist. */
  folders(dir: string): Promise<string[]>;
  /** The file's bytes; throws a NotFound error (isNotFound) when absent. */
  read(file: string): Promise<Buffer>;
  /** Size and modification time, or undefined when absent. */
  stat(file: string): Promise<StoredFile | undefined>;
  /** Writes (or replaces) a whole file. */
  write(file: string, data: Buffer | string): Promise<void>;
  /** Writes a file only if no file has that name; false when another writer got there first. Atomic. */
  putIfAbsent(file: string, data: Buffer | string): Promise<boolean>;
  delete(file: string): Promise<void>;
  /** The location DuckDB reads and writes `file` at (read_parquet, COPY ... TO). */
  locate(file: string): string;
  /** Makes the folder of `file` exist, for engines (DuckDB COPY) that write into the table directly. */
  prepareDir(dir: string): Promise<void>;
}

export function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException)?.code === 'ENOENT';
}

/** A table in a local folder. putIfAbsent writes a temporary file and link()s it to the final name: link fails with EEXIST when the name is taken, so two writers can never both commit one version, and a reader never sees a half-written file. */
export class LocalStorage implements DeltaStorage {
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  locate(file: string): string {
    return path.join(this.root, ...file.split('/'));
  }

  async list(dir: string, options: ListOptions = {}): Promise<StoredFile[]> {
    const out: StoredFile[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await fs.readdir(this.locate(rel), { withFileTypes: true });
      } catch (err) {
        if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
        throw err;
      }
      const startAfter = options.startAfter;
      if (startAfter !== undefined) entries = entries.filter((e) => e.name > startAfter);
      const stats = await Promise.all(
        entries.map(async (e) => {
          const child = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory()) {
            if (options.recursive) await walk(child);
            return undefined;
          }
          if (!e.isFile()) return undefined;
          try {
            const s = await fs.stat(this.locate(child));
            return { path: child, size: s.size, modificationTime: Math.floor(s.mtimeMs) };
          } catch (err) {
            if (isNotFound(err)) return undefined; // deleted while listing
            throw err;
          }
        }),
      );
      for (const s of stats) if (s) out.push(s);
    };
    await walk(dir.replace(/\/+$/, ''));
    return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  }

  async folders(dir: string): Promise<string[]> {
    try {
      return (await fs.readdir(this.locate(dir), { withFileTypes: true }))
        .filter((e) => e.isDirectory())
        .map((e) => e.name)
        .sort();
    } catch (err) {
      if (isNotFound(err) || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
      throw err;
    }
  }

  read(file: string): Promise<Buffer> {
    return fs.readFile(this.locate(file));
  }

  async stat(file: string): Promise<StoredFile | undefined> {
    try {
      const s = await fs.stat(this.locate(file));
      return { path: file, size: s.size, modificationTime: Math.floor(s.mtimeMs) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async write(file: string, data: Buffer | string): Promise<void> {
    const target = this.locate(file);
    await fs.mkdir(path.dirname(target), { recursive: true });
    // Replaced through a rename, so a reader sees the old file or the new one.
    const tmp = `${target}.${randomUUID()}.tmp`;
    await fs.writeFile(tmp, data);
    await fs.rename(tmp, target);
  }

  async putIfAbsent(file: string, data: Buffer | string): Promise<boolean> {
    const target = this.locate(file);
    const dir = path.dirname(target);
    await fs.mkdir(dir, { recursive: true });
    // The temporary name starts with '.' so listings of the log never mistake it for a commit.
    const tmp = path.join(dir, `.${path.basename(target)}.${randomUUID()}.tmp`);
    const handle = await fs.open(tmp, 'wx');
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await fs.link(tmp, target);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await fs.unlink(tmp).catch(() => undefined);
    }
  }

  async delete(file: string): Promise<void> {
    try {
      await fs.unlink(this.locate(file));
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  async prepareDir(dir: string): Promise<void> {
    await fs.mkdir(this.locate(dir), { recursive: true });
  }
}
