/**
 * The server's data is private to the account that runs it: the data folder and the
 * files folder are created `0700`, the databases (`chat.db`, `files.db`, their `-wal`
 * and `-shm`) and the held files `0600`, whatever the umask. Folders and files left
 * readable by others (an older version, a copy, a umask of 022) are tightened when the
 * server opens them, and the log says so.
 *
 * SQLite creates a database's `-wal` and `-shm` files with the permissions of the
 * database file itself, so creating `chat.db` as `0600` before SQLite opens it is
 * enough for the files it makes later.
 *
 * On Windows, where modes do not apply, every function here does nothing.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";

const log = getLogger(["chat", "server", "files"]);

/** Mode of the server's folders: the owner only. */
export const PRIVATE_DIR_MODE = 0o700;
/** Mode of the server's files: the owner reads and writes. */
export const PRIVATE_FILE_MODE = 0o600;

const POSIX = Deno.build.os !== "windows";
/** The sticky bit: a folder shared by several users, such as `/tmp`. */
const STICKY = 0o1000;

/**
 * Creates `dir` (and missing parents) `0700`; an existing one readable or writable by
 * others is tightened to `0700`, unless it is a shared folder such as `/tmp` (sticky
 * bit), which is left alone with a warning. Synchronous: for startup.
 *
 * @throws the error of `Deno.mkdirSync` or `Deno.chmodSync`.
 * @example
 * ```ts ignore
 * import { makePrivateDir } from "./file_modes.ts";
 * makePrivateDir("./chat-data");
 * ```
 */
export function makePrivateDir(dir: string): void {
  Deno.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  // A data folder may be a link to where the data really is (/var/lib/chat -> /srv/chat).
  tighten(dir, PRIVATE_DIR_MODE, { follow: true });
}

/**
 * Creates the empty file `path` with mode `0600` unless it exists (an empty file is a
 * new database to SQLite); an existing one, and its `-wal` and `-shm` files, are
 * tightened to `0600`. Synchronous: for startup.
 */
export function makePrivateDatabase(path: string): void {
  if (POSIX) {
    try {
      // The umask may take bits off, never add some: 0600 or less.
      Deno.openSync(path, { createNew: true, write: true, mode: PRIVATE_FILE_MODE }).close();
    } catch (err) {
      if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    }
  }
  for (const file of [path, `${path}-wal`, `${path}-shm`]) tighten(file, PRIVATE_FILE_MODE);
}

/**
 * Takes the group's and others' permissions off `path` when it has some (missing files
 * are skipped, and symbolic links unless `follow`), and logs the change unless `quiet`
 * (a caller that tightens many files logs once). Returns whether it changed anything.
 * Synchronous: for startup.
 *
 * @example
 * ```ts ignore
 * import { PRIVATE_FILE_MODE, tighten } from "./file_modes.ts";
 * tighten("./chat-data/chat.db", PRIVATE_FILE_MODE);
 * ```
 */
export function tighten(
  path: string,
  mode: number,
  options: { quiet?: boolean; follow?: boolean } = {},
): boolean {
  if (!POSIX) return false;
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
    if (info.isSymlink && options.follow) info = Deno.statSync(path);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
  if (info.isSymlink || info.mode === null) return false;
  const current = info.mode & 0o777;
  if ((current & 0o077) === 0) return false;
  if (info.isDirectory && (info.mode & STICKY) !== 0) {
    log.warn("{path} is a shared folder (mode {mode}): use a folder of the server's own", {
      path,
      mode: octal(info.mode & 0o7777),
    });
    return false;
  }
  Deno.chmodSync(path, mode);
  if (options.quiet) return true;
  log.warn("{path} was readable by others (mode {from}): tightened to {to}", {
    path,
    from: octal(current),
    to: octal(mode),
  });
  return true;
}

function octal(mode: number): string {
  return `0${mode.toString(8).padStart(3, "0")}`;
}
