/**
 * Private files of the local OpenID Connect provider (people, signing keys): a folder only its owner can
 * enter, and files written whole or not at all (a temporary file beside the target, then a rename).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';

/** Makes `dir` (and its parents) if missing; the folder itself is mode 0700. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}

/**
 * Writes `text` to `file` (mode 0600) atomically: a reader, or a crash mid-write, sees the old content or
 * the new one, never a part. The temporary file is made with mode 0600 from the start, so the secret is
 * never readable by others, not even for a moment.
 */
export function writePrivateFileAtomic(file: string, text: string): void {
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temp, 'wx', 0o600);
  try {
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
