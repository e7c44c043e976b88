/**
 * filebased: one file per key in a directory, named by the md5 of the made key (with its
 * own suffix for tag versions, which a cull never picks). Every
 * write goes to a temp file that is then renamed (or, for `add`, hard-linked) into place, so a
 * reader in any process sees a whole file or none. Each file carries a CRC-32 of its contents: a
 * damaged, truncated or foreign file reads as a miss and is removed. The surprise: an expired or
 * damaged file is removed only under a per-key lock file, and only if it is still the file that was
 * read, because `add` replaces such files under the same lock; an unguarded unlink could remove a
 * file another process has just added, and let a second `add` of the key answer true as well.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, open, readdir, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { dirname, join, resolve } from 'node:path';
import { BaseCache, type CacheParams, type Entry } from '../cache/base-cache.js';
import { bytesCodec } from '../encoding/codec.js';
import { md5 } from '../keys/hash.js';
import { pathKind } from './paths.js';
import { CULLING_OPTIONS, cullCount, type CullingOptions, cullingOptions } from './culling.js';

export type FileBasedOptions = CullingOptions;

/** The folder a location names (a list of one is one). */
const folderOf = (params: CacheParams<object>): string | undefined => (Array.isArray(params.location) ? params.location[0] : params.location);

const SUFFIX = '.cache';
/** The suffix of the files of tag versions and of the tag horizon, which culls leave alone (`survivesCulls`). */
const CULL_PROOF_SUFFIX = '.tag';
const OWN_FILE = /^[0-9a-f]{32}\.(cache|tag)$/;
const CULLABLE_FILE = /^[0-9a-f]{32}\.cache$/;

// File layout: magic, format version, expiry (float64, Infinity = never), payload length, CRC-32 of
// the expiry, the length and the payload, then the payload.
const MAGIC = 0xc6;
const FORMAT = 2;
const CHECKED_FROM = 2;
const CRC_AT = 14;
const HEADER_BYTES = 18;
/** A lock file older than this is left over by a process that died holding it. */
const STALE_LOCK_MS = 10_000;
const LOCK_RETRY_MS = 2;

type FileEntry = Entry<Buffer> & { expiresAt: number | null };
/** What a read found: a live entry, nothing, or a file to remove (expired or damaged) and its inode. */
type FileRead = { entry: FileEntry } | { dead: number } | undefined;

export class FileBasedCache extends BaseCache<Buffer> {
  static override readonly optionNames = CULLING_OPTIONS;
  readonly directory: string;
  private readonly culling: Required<CullingOptions>;
  private directoryReady: Promise<unknown> | undefined;

  constructor(params: CacheParams<FileBasedOptions> = {}) {
    super(params, bytesCodec);
    this.directory = resolve(folderOf(params)!);
    this.culling = cullingOptions(this.alias, params.options ?? {});
  }

  /** One folder, there already or to be made on the first write: no file where it or a folder above it would be. */
  static override locationProblem(params: CacheParams<FileBasedOptions>): string | undefined {
    const location = folderOf(params);
    if (Array.isArray(params.location) && params.location.length > 1) {
      return `the filebased backend's location must be one folder to keep its files in (got '${params.location.join("', '")}')`;
    }
    if (!location) return 'the filebased backend needs a location: the directory to keep its files in';
    for (let path = resolve(location); ; path = dirname(path)) {
      const kind = pathKind(path);
      if (kind !== undefined)
        return kind === 'folder' ? undefined : `location must be a folder to keep the files in, but '${path}' is a file (got '${location}')`;
      if (dirname(path) === path) return undefined;
    }
  }

  protected async read(keys: string[]): Promise<Map<string, FileEntry>> {
    const found = new Map<string, FileEntry>();
    const entries = await Promise.all(keys.map((key) => this.readOne(key)));
    keys.forEach((key, index) => {
      const entry = entries[index];
      if (entry !== undefined) found.set(key, entry);
    });
    return found;
  }

  protected override async readOne(key: string): Promise<FileEntry | undefined> {
    const path = this.pathOf(key);
    const found = await this.readFile(path);
    if (found === undefined) return undefined;
    if ('entry' in found) return found.entry;
    await this.removeDead(path, found.dead);
    return undefined;
  }

  protected async write(entries: Array<[string, Buffer]>, expiresAt: number | null): Promise<string[]> {
    await this.cull();
    await Promise.all(entries.map(([key, payload]) => this.writeAtomically(this.pathOf(key), encodeFile(payload, expiresAt))));
    return [];
  }

  protected async insert(key: string, payload: Buffer, expiresAt: number | null): Promise<boolean> {
    await this.cull();
    const path = this.pathOf(key);
    const temp = await this.writeTemp(encodeFile(payload, expiresAt));
    try {
      // link() fails when the target exists, so two processes adding at once cannot both win.
      if (await linkUnlessTaken(temp, path)) return true;
      // A file is there. Judging it dead and replacing it happens under the key's lock, so that only
      // one adder replaces a given dead file; a file that turns up meanwhile makes the link fail.
      const added = await this.underLock(path, true, async () => {
        const found = await this.readFile(path);
        if (found !== undefined && 'entry' in found) return false;
        if (found !== undefined) await unlinkIfSame(path, found.dead);
        return linkUnlessTaken(temp, path);
      });
      return added === true;
    } finally {
      await unlinkIfExists(temp);
    }
  }

  protected async remove(keys: string[]): Promise<number> {
    const removed = await Promise.all(
      keys.map(async (key) => {
        const live = (await this.readOne(key)) !== undefined;
        return (await unlinkIfExists(this.pathOf(key))) && live;
      }),
    );
    return removed.filter(Boolean).length;
  }

  protected async retime(key: string, expiresAt: number | null): Promise<boolean> {
    const entry = await this.readOne(key);
    if (entry === undefined) return false;
    await this.writeAtomically(this.pathOf(key), encodeFile(entry.payload, expiresAt));
    return true;
  }

  protected async removeAll(): Promise<void> {
    await Promise.all((await this.ownFiles()).map((name) => unlinkIfExists(join(this.directory, name))));
  }

  /** Reads and checks the file at `path`; a dead one is reported with its inode, not removed. */
  private async readFile(path: string): Promise<FileRead> {
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const entry = decodeFile(await handle.readFile());
      if (entry !== 'damaged' && !this.isExpired(entry.expiresAt)) return { entry };
      return { dead: (await handle.stat()).ino };
    } finally {
      await handle.close();
    }
  }

  /** Removes an expired or damaged file, unless an adder holds the key's lock or the file was replaced. */
  private async removeDead(path: string, inode: number): Promise<void> {
    await this.underLock(path, false, () => unlinkIfSame(path, inode));
  }

  /**
   * Runs `action` holding the key's lock file (created exclusively, so one holder in all processes).
   * `wait` false gives up at once when someone holds it. A lock left by a dead process is broken
   * after STALE_LOCK_MS.
   */
  private async underLock<T>(path: string, wait: boolean, action: () => Promise<T>): Promise<T | undefined> {
    const lock = `${path}.lock`;
    for (;;) {
      try {
        await (await open(lock, 'wx', 0o600)).close();
        break;
      } catch (error) {
        if (errorCode(error) !== 'EEXIST') throw error;
        if (!wait) return undefined;
        await breakIfStale(lock);
        await new Promise((resolve) => setTimeout(resolve, LOCK_RETRY_MS));
      }
    }
    try {
      return await action();
    } finally {
      await unlinkIfExists(lock);
    }
  }

  private pathOf(key: string): string {
    return join(this.directory, md5(key) + (this.survivesCulls(key) ? CULL_PROOF_SUFFIX : SUFFIX));
  }

  /** Removes 1/cullFrequency of the files, chosen at random among those of entries, when the directory is full. */
  private async cull(): Promise<void> {
    const all = await this.ownFiles();
    const files = all.filter((name) => CULLABLE_FILE.test(name));
    let count = Math.min(files.length, cullCount(all.length, this.culling));
    for (let i = 0; count > 0; i++, count--) {
      const pick = i + Math.floor(Math.random() * (files.length - i));
      [files[i], files[pick]] = [files[pick]!, files[i]!];
      await unlinkIfExists(join(this.directory, files[i]!));
    }
  }

  /** The files of its directory, expired ones not yet culled included. */
  protected override async countEntries(): Promise<number> {
    return (await this.ownFiles()).length;
  }

  private async ownFiles(): Promise<string[]> {
    try {
      return (await readdir(this.directory)).filter((name) => OWN_FILE.test(name));
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return [];
      throw error;
    }
  }

  private async writeAtomically(path: string, data: Buffer): Promise<void> {
    const temp = await this.writeTemp(data);
    try {
      await rename(temp, path);
    } catch (error) {
      await unlinkIfExists(temp);
      throw error;
    }
  }

  private async writeTemp(data: Buffer): Promise<string> {
    this.directoryReady ??= mkdir(this.directory, { recursive: true, mode: 0o700 });
    await this.directoryReady;
    const temp = join(this.directory, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    try {
      await writeFile(temp, data, { mode: 0o600 });
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
      // Someone removed the directory since: make it again, once.
      this.directoryReady = mkdir(this.directory, { recursive: true, mode: 0o700 });
      await this.directoryReady;
      await writeFile(temp, data, { mode: 0o600 });
    }
    return temp;
  }
}

function encodeFile(payload: Buffer, expiresAt: number | null): Buffer {
  const file = Buffer.allocUnsafe(HEADER_BYTES + payload.length);
  file[0] = MAGIC;
  file[1] = FORMAT;
  file.writeDoubleBE(expiresAt ?? Infinity, 2);
  file.writeUInt32BE(payload.length, 10);
  payload.copy(file, HEADER_BYTES);
  file.writeUInt32BE(crc32(payload, crc32(file.subarray(CHECKED_FROM, CRC_AT))), CRC_AT);
  return file;
}

function decodeFile(file: Buffer): FileEntry | 'damaged' {
  if (file.length < HEADER_BYTES || file[0] !== MAGIC || file[1] !== FORMAT) return 'damaged';
  if (file.readUInt32BE(10) !== file.length - HEADER_BYTES) return 'damaged';
  const payload = file.subarray(HEADER_BYTES);
  if (crc32(payload, crc32(file.subarray(CHECKED_FROM, CRC_AT))) !== file.readUInt32BE(CRC_AT)) return 'damaged';
  const expiresAt = file.readDoubleBE(2);
  return { payload, expiresAt: expiresAt === Infinity ? null : expiresAt };
}

/** Hard-links `temp` to `path`; false when `path` exists. */
async function linkUnlessTaken(temp: string, path: string): Promise<boolean> {
  try {
    await link(temp, path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
}

/** Removes the file at `path` if it is still the one with this inode (a file renamed into place since stays). */
async function unlinkIfSame(path: string, inode: number): Promise<void> {
  try {
    if ((await stat(path)).ino === inode) await unlinkIfExists(path);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
}

async function breakIfStale(lock: string): Promise<void> {
  try {
    if (Date.now() - (await stat(lock)).mtimeMs > STALE_LOCK_MS) await unlinkIfExists(lock);
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
}

async function unlinkIfExists(path: string): Promise<boolean> {
  try {
    await unlink(path);
    return true;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}
