/** What is at a path on disk, for the backends that keep their entries in files (filebased, SQLite). */
import { statSync } from 'node:fs';

/** 'folder', 'file' (anything else that is there), or undefined when nothing is, a file above it included. */
export function pathKind(path: string): 'folder' | 'file' | undefined {
  try {
    const found = statSync(path, { throwIfNoEntry: false });
    return found === undefined ? undefined : found.isDirectory() ? 'folder' : 'file';
  } catch (error) {
    // A file where a folder above the path would be: nothing is at the path itself.
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw error;
  }
}
