/**
 * filebased: one file per key in a directory (SPEC §4), named by the md5 of the made key. Every
 * write goes to a temp file that is then renamed (or, for `add`, hard-linked) into place, so a
 * reader in any process sees a whole file or none. A corrupt or truncated file reads as a miss.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BaseCache, type CacheParams, type Entry } from '../base.js';
import { bytesCodec } from '../codec.js';
import { md5 } from '../hash.js';
import { CULLING_OPTION_NAMES, cullCount, type CullingOptions, cullingOptions } from '../culling.js';

export type FileBasedOptions = CullingOptions;

const SUFFIX = '.cache';
const OWN_FILE = /^[0-9a-f]{32}\.cache$/;

// File layout: magic, format version, expiry (float64, Infinity = never), payload length, payload.
const MAGIC = 0xc6;
const FORMAT = 1;
const HEADER_BYTES = 14;

type FileEntry = Entry<Buffer> & { expiresAt: number | null };

export class FileBasedCache extends BaseCache<Buffer> {
  static override readonly optionNames = CULLING_OPTION_NAMES;
  readonly directory: string;
  private readonly culling: Required<CullingOptions>;
  private directoryReady: Promise<unknown> | undefined;

  constructor(params: CacheParams<FileBasedOptions> = {}) {
    super(params, bytesCodec);
    const location = Array.isArray(params.location) ? params.location[0] : params.location;
    if (!location) throw this.typeError('the filebased backend needs a location: the directory to keep its files in');
    this.directory = resolve(location);
    this.culling = cullingOptions(this.alias, params.options ?? {});
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
    const entry = decodeFile(await readIfExists(path));
    if (entry === 'missing') return undefined;
    if (entry === 'corrupt' || this.isExpired(entry.expiresAt)) {
      await unlinkIfExists(path);
      return undefined;
    }
    return entry;
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
      await link(temp, path);
      return true;
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
      if ((await this.readOne(key)) !== undefined) return false;
      await rename(temp, path);
      return true;
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

  private pathOf(key: string): string {
    return join(this.directory, md5(key) + SUFFIX);
  }

  /** Removes 1/cullFrequency of the files, chosen at random, when the directory is full. */
  private async cull(): Promise<void> {
    const files = await this.ownFiles();
    let count = cullCount(files.length, this.culling);
    for (let i = 0; count > 0; i++, count--) {
      const pick = i + Math.floor(Math.random() * (files.length - i));
      [files[i], files[pick]] = [files[pick]!, files[i]!];
      await unlinkIfExists(join(this.directory, files[i]!));
    }
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
  return file;
}

function decodeFile(file: Buffer | undefined): FileEntry | 'missing' | 'corrupt' {
  if (file === undefined) return 'missing';
  if (file.length < HEADER_BYTES || file[0] !== MAGIC || file[1] !== FORMAT) return 'corrupt';
  if (file.readUInt32BE(10) !== file.length - HEADER_BYTES) return 'corrupt';
  const expiresAt = file.readDoubleBE(2);
  if (Number.isNaN(expiresAt)) return 'corrupt';
  return { payload: file.subarray(HEADER_BYTES), expiresAt: expiresAt === Infinity ? null : expiresAt };
}

async function readIfExists(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
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
