/**
 * The `chat connect` mode: the terminal client.
 *
 * - Interactive (stdin is a terminal, no `--json`): the line editor of
 *   `client/interactive_prompt.ts` (shared with `chat peer`), its prompt showing
 *   the current room or conversation; incoming lines are printed above the prompt
 *   without disturbing the input being typed; HH:MM timestamps, a colour per nick,
 *   the bell on a direct message or a mention, tab completion of commands, rooms and
 *   nicks. Direct messages shown are marked read (their senders get a receipt).
 * - Scripted (stdin is not a terminal, or `--json`): every input line is processed
 *   in order exactly as if typed. At the end of input it waits until every request
 *   is answered, logs out and exits 0 — or 1, naming the reason, when any was
 *   refused or the server went away for good. With `--follow` it keeps printing
 *   what arrives after the end of input, through server restarts (it reconnects and
 *   catches up as always), until the session ends for good (the server ends it, or
 *   reconnecting gives up after `--retries` attempts: exit 1), or SIGINT / SIGTERM
 *   (exit 0).
 *
 * Output goes to stdout: lines for people, or with `--json` one JSON object per event
 * (messages, direct messages, presence, receipts, replies to commands, errors).
 * Diagnostics (connection trouble) go to stderr. The password comes from
 * `--password-file`, `CHAT_PASSWORD`, or a prompt without echo in a terminal; never
 * from an argument.
 *
 * Defaults come from the environment and a config file in the user's config folder
 * (see `connect_config.ts`); `--tls` trusts self-signed servers on first use, like SSH
 * (see `connect_trust.ts`).
 *
 * Several servers (nodes of one chat): `--host a:44444,b:44444` (or `CHAT_HOST`, or the
 * config file's `host`), each entry `HOST[:PORT]` (`--port` for those without one,
 * `[IPV6]:PORT`). As NATS clients do with a server list, the list is shuffled unless
 * `--no-randomize` is given, so that clients spread over the servers; the client logs in
 * at the first address that accepts and, when the connection drops, moves on to the next
 * (see "Server lists" in `client/chat_client.ts`), resending what was not acknowledged
 * and catching up by id. The server actually connected to is named: on the `connected`
 * line (on stderr when scripted with several addresses) and in every `reconnected` event.
 *
 * Files (see `client/file_transfer.ts`): `/send NICK PATH` sends through the server,
 * `/accept #ID` saves an offered file into `--download-dir` (default `~/Downloads`),
 * `--accept-files DIR` accepts every offer into DIR (a script waits for those under way
 * before leaving; one that fails makes it exit 1). Progress shows in the prompt, or as
 * a bar on stderr when it is a terminal; with `--json`, as `file_progress` objects
 * (and `file_hashing` ones while a large file is hashed before its offer).
 *
 * @module
 */

import { join } from "node:path";
import process from "node:process";
import { Command, Option } from "commander";
import { nameKey, nameProblem } from "../protocol/names.ts";
import { backoffDelay, resolveBackoff } from "../client/backoff.ts";
import { ChatClient, type ChatClientOptions, type ChatEvent } from "../client/chat_client.ts";
import { ChatError, isRetryable } from "../client/chat_error.ts";
import { KNOWN_SERVERS_FILE_NAME, KnownServers } from "../client/known_servers.ts";
import { normalizeFingerprint } from "../client/pinned_tls.ts";
import { ringsBell } from "../client/bell.ts";
import { type CommandContext, completeLine, executeLine } from "../client/commands.ts";
import {
  type DisplayItem,
  formatItem,
  type RenderOptions,
  sanitize,
  toJsonEvent,
} from "../client/render.ts";
import { SessionState } from "../client/session_state.ts";
import { FileTransfers } from "../client/file_transfer.ts";
import { ProgressLine } from "../client/progress_bar.ts";
import { type PrivateEvent, PrivateSessions } from "../client/private_sessions.ts";
import { wrapLine } from "../client/terminal_ui.ts";
import { InteractivePrompt } from "../client/interactive_prompt.ts";
import {
  formatServerAddress,
  parseServerList,
  type ServerAddress,
  ServerListError,
  shuffleServers,
} from "../client/server_list.ts";
import { UsageError } from "./errors.ts";
import { processEnv, userConfigDir } from "./config_dir.ts";
import { userFolder, userPath } from "./connect_paths.ts";
import { applyConnectConfig, CONFIG_FILE_NAME, loadConnectConfig } from "./connect_config.ts";
import { connectTrustingAll, type TlsChoice } from "./connect_trust.ts";
import { integerIn, parsePort } from "./options.ts";
import { VERSION } from "./version.ts";
import { LocalLog } from "../client/local_log.ts";
import { Views } from "../client/views.ts";

/** Requests a script may have in flight before reading further input waits. */
const SCRIPT_WINDOW = 256;
/** Failed connection attempts before a script gives up, unless `--retries` says otherwise. */
const SCRIPT_RETRIES = 10;
/** Longest wait for the server's answer to `logout` when leaving. */
const LOGOUT_TIMEOUT_MS = 3000;
/** How many times a password typed at the prompt is asked for when wrong or refused. */
const PASSWORD_TRIES = 3;

/** The options of `chat connect` as commander parses them. */
export interface ConnectOptions {
  /** `--host`. */
  host: string;
  /** `--port`. */
  port: number;
  /** `--nick`. */
  nick?: string;
  /** `--password-file`. */
  passwordFile?: string;
  /** `--room`. */
  room: string;
  /** `--tls`. */
  tls?: boolean;
  /** `--ca`. */
  ca?: string;
  /** `--trust-fingerprint`. */
  trustFingerprint?: string;
  /** `--json`. */
  json?: boolean;
  /** `--follow`. */
  follow?: boolean;
  /** `--no-color` makes this false. */
  color: boolean;
  /** `--retries`. */
  retries?: number;
  /** `--accept-files DIR`: accept every file offered, into DIR. */
  acceptFiles?: string;
  /** `--download-dir DIR`: where `/accept #FILE` saves files. */
  downloadDir?: string;
  /** `--log-dir DIR`: a local log, one file per room and conversation. */
  logDir?: string;
  /** `--no-randomize` makes this false: the `--host` list is tried in the order given. */
  randomize: boolean;
}

/**
 * Builds the `connect` subcommand with its options and action.
 *
 * @example
 * ```ts ignore
 * import { buildProgram } from "./program.ts";
 * import { connectCommand } from "./connect.ts";
 * buildProgram([connectCommand()]);
 * ```
 */
export function connectCommand(): Command {
  return new Command("connect")
    .description(
      "connect to a chat server: interactive in a terminal, scripted when stdin is not one " +
        "(each line as if typed; /help lists the commands)",
    )
    .addOption(
      new Option(
        "--host <host>",
        "server address, or several (HOST[:PORT],HOST[:PORT]...): tried in turn, failing over on reconnect",
      ).default("127.0.0.1").env("CHAT_HOST"),
    )
    .addOption(
      new Option("--port <port>", "server port (of --host addresses without one)").argParser(
        parsePort,
      ).default(44444).env("CHAT_PORT"),
    )
    .addOption(new Option("--nick <name>", "your nick").env("CHAT_NICK"))
    .option(
      "--password-file <file>",
      "read the password from FILE (else CHAT_PASSWORD, else a prompt in a terminal)",
    )
    .option("--room <room>", "room to start in (joined if needed)", "lobby")
    .option("--tls", "use TLS (verified against the system's CAs, or --ca)")
    .option("--ca <file>", "trust this CA certificate (PEM) for TLS; implies --tls")
    .option(
      "--trust-fingerprint <sha256>",
      "trust exactly the server certificate with this SHA-256 fingerprint (as chat serve prints it); implies --tls",
    )
    .option("--json", "one JSON object per line on stdout for every event and reply")
    .option("--follow", "scripted: after the end of input, keep printing until the server closes")
    .option(
      "--accept-files <dir>",
      "accept every file offered to you, saving it into DIR (scripts, bots)",
    )
    .option("--download-dir <dir>", "where /accept #FILE saves files (default: ~/Downloads)")
    .option(
      "--log-dir <dir>",
      "append every message shown to DIR, one file per room (#room.log) and conversation (@nick.log)",
    )
    .option("--no-color", "no colours (also NO_COLOR)")
    .option(
      "--no-randomize",
      "try the --host addresses in the order given (default: shuffled, to spread clients)",
    )
    .option(
      "--retries <n>",
      `failed connection attempts before giving up (default: unlimited in a terminal, ${SCRIPT_RETRIES} otherwise)`,
      integerIn(0, 1_000_000),
    )
    .addHelpText(
      "after",
      "\nDefaults for these options also come from CHAT_HOST, CHAT_PORT, CHAT_NICK and the\n" +
        `config file ${CONFIG_FILE_NAME} in the user's config folder ($XDG_CONFIG_HOME/chat,\n` +
        "else ~/.config/chat; ~/Library/Application Support/chat on macOS, %APPDATA%\\chat on\n" +
        'Windows), keyed by flag names: {"host": "example.org", "nick": "ada", "tls": true}.\n' +
        "Flags win over the environment, the environment over the file. Certificates trusted\n" +
        `on first use (--tls with a self-signed server) are kept in ${KNOWN_SERVERS_FILE_NAME} there.\n` +
        "Exit codes: 0 done, 1 refused or failed (one line on stderr), 2 bad usage.",
    )
    .action(async (_options: ConnectOptions, command: Command) => {
      const dir = userConfigDir();
      if (dir !== null) {
        applyConnectConfig(command, await loadConnectConfig(join(dir, CONFIG_FILE_NAME)));
      }
      const options = command.opts<ConnectOptions>();
      // CHAT_PASSWORD is the environment: it wins over a password-file from the file.
      if (command.getOptionValueSource("passwordFile") === "config" && envVar("CHAT_PASSWORD")) {
        delete options.passwordFile;
      }
      await runConnect(options, { configDir: dir });
    });
}

/**
 * Runs the client with parsed options until the user quits or the input ends.
 * `context.configDir` is the user's config folder (default: {@linkcode userConfigDir}),
 * where the known-servers file is kept.
 * Throws {@linkcode UsageError} for bad flags, and an `Error` with a one-line
 * message when it cannot log in or a scripted run fails.
 */
export async function runConnect(
  given: ConnectOptions,
  context: { configDir?: string | null } = {},
): Promise<void> {
  const options = resolvePaths(given);
  const interactive = Deno.stdin.isTerminal() && !options.json;
  const nick = options.nick ?? (interactive ? await promptLine("nick: ") : undefined);
  if (nick === undefined || nick === "") {
    throw new UsageError("--nick NAME (or CHAT_NICK) is required");
  }
  const problem = nameProblem(nick);
  if (problem !== null) throw new UsageError(`--nick "${nick}": a nick ${problem}`);
  const roomProblem = nameProblem(options.room);
  if (roomProblem !== null) {
    throw new UsageError(`--room "${options.room}": a room name ${roomProblem}`);
  }
  let servers: ServerAddress[];
  try {
    servers = parseServerList(options.host, options.port);
  } catch (err) {
    if (!(err instanceof ServerListError)) throw err;
    throw new UsageError(`--host (or CHAT_HOST): ${err.message}`);
  }
  if (options.randomize !== false) servers = shuffleServers(servers);
  // How failures before any connection name the server(s).
  const named = servers.map(formatServerAddress).join(",");
  let fingerprint: string | undefined;
  if (options.trustFingerprint !== undefined) {
    try {
      fingerprint = normalizeFingerprint(options.trustFingerprint);
    } catch (err) {
      throw new UsageError(`--trust-fingerprint: ${errorText(err)}`);
    }
  }
  const caCerts = options.ca !== undefined && fingerprint === undefined
    ? [await readFileText(options.ca, "CA certificate")]
    : undefined;
  const useTls = options.tls === true || caCerts !== undefined || fingerprint !== undefined;
  const tlsFlags = [
    ...(options.tls === true ? ["--tls"] : []),
    ...(options.ca !== undefined ? ["--ca"] : []),
    ...(options.trustFingerprint !== undefined ? ["--trust-fingerprint"] : []),
  ].join(" and ");
  if (options.logDir !== undefined) await LocalLog.prepare(options.logDir);
  const retries = options.retries ?? (interactive ? Infinity : SCRIPT_RETRIES);
  const render: RenderOptions = {
    color: options.color && !Deno.noColor && Deno.stdout.isTerminal() && !options.json,
  };
  const clientOptions: ChatClientOptions = {
    servers,
    nick,
    agent: `chat/${VERSION}`,
    reconnect: { maxAttempts: Math.max(retries, 1) },
  };
  // The password is asked for only once the server is trusted.
  let passwordOnce: Promise<string | undefined> | null = null;
  // A password typed at the prompt is asked for again when wrong or refused (too short).
  const prompted = interactive && options.passwordFile === undefined &&
    (envVar("CHAT_PASSWORD") ?? "") === "";
  // At the prompt, the first login does not register: an unknown nick is said to be new,
  // and its password is asked for twice (a typo in a nick must not open an account).
  let creating = false;
  const connect = async (tls?: TlsChoice[]): Promise<ChatClient> => {
    for (let tries = 1;; tries++) {
      passwordOnce ??= creating
        ? promptNewPassword(nick)
        : resolvePassword(options, nick, interactive);
      const password = await passwordOnce;
      try {
        return await connectWithRetry(
          {
            ...clientOptions,
            ...(password !== undefined ? { password } : {}),
            ...(tls !== undefined
              ? { servers: servers.map((s, i) => ({ ...s, tls: tls[i] })) }
              : {}),
            ...(prompted && !creating ? { register: false } : {}),
          },
          retries,
          tlsFlags,
          named,
        );
      } catch (err) {
        const code = err instanceof Error && err.cause instanceof ChatError
          ? err.cause.code
          : undefined;
        if (prompted && code === "no_account" && !creating) {
          writeErr(
            `* ${nick} has no account on ${named}: ` +
              `creating it (Ctrl-C to stop, if the nick was a typo)\n`,
          );
          creating = true;
          passwordOnce = null;
          tries--;
          continue;
        }
        const again = code === "wrong_password" || code === "bad_password";
        if (!prompted || !again || tries >= PASSWORD_TRIES) throw err;
        writeErr(`${errorText(err)}: try again (${PASSWORD_TRIES - tries} left)\n`);
        passwordOnce = null;
      }
    }
  };
  const configDir = context.configDir === undefined ? userConfigDir() : context.configDir;
  const client = !useTls ? await connect() : await connectTrustingAll(
    {
      servers,
      ...(caCerts !== undefined ? { caCerts } : {}),
      ...(fingerprint !== undefined ? { fingerprint } : {}),
      known: configDir === null ? null : new KnownServers(join(configDir, KNOWN_SERVERS_FILE_NAME)),
      interactive,
      ask: (question) => promptLine(question),
      warn: (text) => writeErr(text + "\n"),
    },
    connect,
    (connected) => connected.address,
  );
  render.self = client.nick;
  const state = new SessionState(client.nick, null, client.joinedRooms);
  state.room = options.room; // joined first if need be (see below)
  render.sentMessage = (id) => state.sentMessage(id); // receipts quote what they are about
  if (interactive) {
    await runInteractive(client, state, options, render);
  } else {
    // Given several addresses, a script is told which one it got (a reconnection says too).
    if (servers.length > 1) {
      const server = formatServerAddress(client.address);
      if (options.json) writeOut(JSON.stringify({ type: "connected", server }) + "\n");
      else writeErr(`* connected to ${server}\n`);
    }
    await runScripted(client, state, options, render);
  }
}

// ---------------------------------------------------------------- connecting

async function connectWithRetry(
  options: ChatClientOptions,
  retries: number,
  tlsFlags: string,
  where: string,
): Promise<ChatClient> {
  const policy = resolveBackoff({});
  for (let attempt = 1;; attempt++) {
    try {
      return await ChatClient.connect(options);
    } catch (err) {
      if (!isRetryable(err) || attempt > retries) {
        throw new Error(loginFailure(err, options.nick, where, tlsFlags), { cause: err });
      }
      const delay = backoffDelay(attempt, policy);
      writeErr(
        `chat connect: ${sanitize(errorText(err))}; retrying in ${(delay / 1000).toFixed(1)} s\n`,
      );
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/**
 * One clear line for a failed login or connection; `tlsFlags` are the TLS flags given
 * (`--tls`, `--ca FILE`, ...), named when the server does not speak TLS.
 */
export function loginFailure(err: unknown, nick: string, where: string, tlsFlags = ""): string {
  if (!(err instanceof ChatError)) return errorText(err);
  // Unless the server's message says when already ("...; try again in 60 s").
  const wait = err.retryAfter !== undefined && !/\b(retry|try again) in\b/.test(err.message)
    ? ` (try again in ${Math.ceil(err.retryAfter)} s)`
    : "";
  switch (err.code) {
    case "wrong_password":
      return `wrong password for ${nick} at ${where}`;
    case "locked":
      return `${nick} is locked after too many wrong passwords${wait}`;
    case "bad_password":
      return `password refused: ${sanitize(err.message)}`;
    case "bad_name":
      return `nick refused: ${sanitize(err.message)}`;
    case "tls_only":
      return `${where} speaks TLS and this connection did not: add --tls`;
    case "not_tls":
      return `${where} does not speak TLS (a plain server): drop ${tlsFlags || "--tls"}`;
    default:
      return `${sanitize(err.message)}${wait}`;
  }
}

async function resolvePassword(
  options: ConnectOptions,
  nick: string,
  interactive: boolean,
): Promise<string | undefined> {
  if (options.passwordFile !== undefined) {
    const text = await readFileText(options.passwordFile, "password file");
    const password = text.replace(/\r?\n$/, "");
    if (password === "") throw new Error(`password file ${options.passwordFile} is empty`);
    return password;
  }
  const fromEnv = envVar("CHAT_PASSWORD");
  if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
  if (interactive) return await promptSecret(`password for ${nick}: `);
  return undefined;
}

/** Asks for a new account's password twice, until both match (a few times at most). */
async function promptNewPassword(nick: string): Promise<string> {
  for (let tries = 1;; tries++) {
    const password = await promptSecret(`choose a password for ${nick}: `);
    if (password === await promptSecret("type it again: ")) return password;
    if (tries >= PASSWORD_TRIES) throw new Error("the two passwords differ");
    writeErr(`the two passwords differ: try again (${PASSWORD_TRIES - tries} left)\n`);
  }
}

async function readFileText(path: string, what: string): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : errorText(err);
    throw new Error(`cannot read ${what} ${path}: ${reason}`);
  }
}

function envVar(name: string): string | undefined {
  return processEnv(name);
}

/** Reads a line from the terminal; without echo for secrets. */
async function readTerminalLine(prompt: string, echo: boolean): Promise<string> {
  writeErr(prompt);
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(256);
  let text = "";
  Deno.stdin.setRaw(true);
  try {
    while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) throw new Error("input ended before a line was entered");
      for (const ch of decoder.decode(buffer.subarray(0, n), { stream: true })) {
        if (ch === "\r" || ch === "\n") return text;
        if (ch === "\x03") throw new Error("interrupted");
        if (ch === "\x04") {
          if (text === "") throw new Error("input ended before a line was entered");
          continue;
        }
        if (ch === "\x7f" || ch === "\b") {
          if (text.length > 0) {
            text = [...text].slice(0, -1).join("");
            if (echo) writeErr("\b \b");
          }
          continue;
        }
        if (ch === "\x15") {
          if (echo) writeErr("\r\x1b[K" + prompt);
          text = "";
          continue;
        }
        if (ch < " ") continue;
        text += ch;
        if (echo) writeErr(ch);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    writeErr("\n");
  }
}

function promptSecret(prompt: string): Promise<string> {
  return readTerminalLine(prompt, false);
}

function promptLine(prompt: string): Promise<string> {
  return readTerminalLine(prompt, true).then((line) => line.trim());
}

// -------------------------------------------------------------------- output

const encoder = new TextEncoder();

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
  } catch (err) {
    // Nobody reads any more (`chat connect ... | head`): drop the output.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}

function writeOut(text: string): void {
  writeAll(Deno.stdout, text);
}

function writeErr(text: string): void {
  writeAll(Deno.stderr, text);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether an event is about the connection (a diagnostic for people). */
function isStatus(item: DisplayItem): boolean {
  return item.type === "disconnected" || item.type === "reconnecting" ||
    item.type === "reconnected" || item.type === "closed";
}

// ------------------------------------------------------------------ scripted

async function runScripted(
  client: ChatClient,
  state: SessionState,
  options: ConnectOptions,
  render: RenderOptions,
): Promise<void> {
  let failures = 0;
  let total = 0;
  let quitting = false;
  let closed: { code?: string; reason?: string } | null = null;
  let stopFollowing = () => {};

  const outTerminal = Deno.stdout.isTerminal();
  const localLog = options.logDir === undefined
    ? null
    : new LocalLog(options.logDir, client.nick, (text) => writeErr(`${text}\n`));
  const show = (item: DisplayItem): void => {
    const repeated = state.repeatsPresence(item);
    const repeatedOffer = state.repeatsOffer(item);
    state.observe(item);
    localLog?.record(item);
    if (item.type === "held") return; // sent later, in order: its reply is what shows
    if (options.json) {
      // An offer told again (same file) is shown once, like the file_offered it brings.
      if (!repeatedOffer) writeOut(JSON.stringify(toJsonEvent(item)) + "\n");
      return;
    }
    if (repeated) return; // said already (a contact's presence comes twice)
    // Leaving is what a script does at its end: not worth a line.
    if (item.type === "closed" && item.code === undefined) return;
    const lines = formatItem(item, render);
    if (lines.length === 0) return;
    // On a terminal, long lines continue indented (see wrapLine): no fake status lines.
    const text = (outTerminal ? lines.flatMap((l) => wrapLine(l, terminalColumns())) : lines)
      .join("\n") + "\n";
    if (isStatus(item) || item.type === "error") writeErr(text);
    else writeOut(text);
  };

  const privates = new PrivateSessions(client, { onEvent: (event) => show(event) });
  // Files: a progress bar on stderr when it is a terminal (never with --json, whose
  // progress events come a few per second); failed automatic downloads fail the run.
  const bar = new ProgressLine(
    (text) => writeErr(text),
    !options.json && Deno.stderr.isTerminal(),
    () => terminalColumns(),
  );
  let fileFailures = 0;
  const files = new FileTransfers(client, {
    ...fileOptions(options),
    onEvent: (event) => {
      if (event.type === "file_failed" && event.direction === "receive") fileFailures++;
      if ((event.type === "file_progress" || event.type === "file_hashing") && !options.json) {
        bar.update(event);
      } else {
        bar.around(() => show(event));
      }
    },
  });

  const pump = (async () => {
    for await (const event of client.events) {
      if (event.type === "closed") closed = event;
      show(event);
    }
  })();

  const ctx: CommandContext = {
    client,
    state,
    privates,
    files,
    show,
    quit: () => {
      quitting = true;
    },
    ...(outTerminal && !options.json ? { columns: terminalColumns } : {}),
  };

  // What each line shows is printed in input order, whatever order replies come in;
  // events from others are printed as they arrive.
  const lineOutputs = new Map<number, { items: DisplayItem[]; done: boolean }>();
  let head = 0;
  const flush = (): void => {
    while (true) {
      const slot = lineOutputs.get(head);
      if (slot === undefined) return;
      for (const item of slot.items) show(item);
      slot.items = [];
      if (!slot.done) return;
      lineOutputs.delete(head);
      head++;
    }
  };
  const inFlight: Promise<void>[] = [];
  const run = (line: string) => {
    const index = total++;
    const slot = { items: [] as DisplayItem[], done: false };
    lineOutputs.set(index, slot);
    const lineCtx: CommandContext = {
      ...ctx,
      show: (item) => {
        if (index === head) show(item);
        else slot.items.push(item);
      },
    };
    inFlight.push(
      executeLine(lineCtx, line).then((ok) => {
        if (!ok) failures++;
        slot.done = true;
        flush();
      }),
    );
  };

  if (!state.isJoined(options.room)) run(`/join ${options.room}`);
  for await (const line of readLines(Deno.stdin.readable)) {
    run(line);
    if (quitting || client.closed) break;
    if (inFlight.length >= SCRIPT_WINDOW) await inFlight.shift();
  }
  await Promise.all(inFlight);

  // Following rides out server restarts like any dropped connection (the client
  // reconnects and catches up); it ends when the session ends for good or on a signal.
  if (options.follow && !quitting && !client.closed) {
    const onSignal = () => stopFollowing();
    await new Promise<void>((resolve) => {
      stopFollowing = resolve;
      Deno.addSignalListener("SIGINT", onSignal);
      Deno.addSignalListener("SIGTERM", onSignal);
      client.done.then(() => resolve());
    });
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
  // Files being received (automatically) are finished before leaving.
  if (!client.closed) await files.idle();
  await files.close();
  bar.clear();
  await privates.close();
  if (!client.closed) {
    // Between connections there is nobody to say goodbye to.
    if (client.state !== "ready") await client.close();
    else await leave(client);
  }
  await pump;
  const end = closed as { code?: string; reason?: string } | null;
  if (failures > 0) {
    const why = end?.code !== undefined ? ` (${sanitize(end.reason ?? end.code)})` : "";
    throw new Error(`${failures} of ${total} command${total === 1 ? "" : "s"} failed${why}`);
  }
  if (end?.code !== undefined && !ENDED_ON_PURPOSE.has(end.code)) {
    throw new Error(`the connection ended: ${sanitize(end.reason ?? end.code)}`);
  }
  if (fileFailures > 0) {
    throw new Error(`${fileFailures} file${fileFailures === 1 ? "" : "s"} could not be received`);
  }
}

/**
 * The options with their relative paths resolved against the folder the user ran the
 * command in (see `connect_paths.ts`: under `deno task` it is not the working directory).
 */
function resolvePaths(options: ConnectOptions): ConnectOptions {
  const base = userFolder();
  if (base === null) return options;
  const resolved = { ...options };
  for (const key of ["passwordFile", "ca", "downloadDir", "acceptFiles", "logDir"] as const) {
    const value = resolved[key];
    if (value !== undefined) resolved[key] = userPath(value, base);
  }
  return resolved;
}

/** The file transfer options of `chat connect`'s flags. */
function fileOptions(
  options: ConnectOptions,
): { downloadDir?: string; acceptDir?: string; baseDir?: string } {
  const base = userFolder();
  return {
    ...(base !== null ? { baseDir: base } : {}),
    ...(options.downloadDir !== undefined ? { downloadDir: options.downloadDir } : {}),
    ...(options.acceptFiles !== undefined ? { acceptDir: options.acceptFiles } : {}),
  };
}

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 80;
  }
}

/** Codes with which the server ends a session on purpose: not a failure of the run. */
const ENDED_ON_PURPOSE = new Set(["idle_timeout", "logged_out"]);

/** Logs out, waiting a bounded time for the server's answer, and closes. */
async function leave(client: ChatClient): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    client.logout().catch(() => {}),
    new Promise((resolve) => timer = setTimeout(resolve, LOGOUT_TIMEOUT_MS)),
  ]);
  clearTimeout(timer);
  await client.close();
}

/** Splits a byte stream into lines (without their `\n` / `\r\n`). */
async function* readLines(stream: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  let buffer = "";
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let at: number;
      while ((at = buffer.indexOf("\n")) >= 0) {
        yield buffer.slice(0, at).replace(/\r$/, "");
        buffer = buffer.slice(at + 1);
      }
    }
    if (buffer !== "") yield buffer.replace(/\r$/, "");
  } finally {
    reader.releaseLock();
  }
}

// --------------------------------------------------------------- interactive

async function runInteractive(
  client: ChatClient,
  state: SessionState,
  options: ConnectOptions,
  render: RenderOptions,
): Promise<void> {
  const color = render.color ?? false;
  let closing = false;
  let failedReason: string | null = null;
  // One view per joined room and opened conversation: lines of the others are kept and
  // counted in the prompt, not printed, until /window shows them.
  const views = new Views(state);
  // The line editor; transfers under way show in its prompt:
  // [report.pdf 45% 8.1 MiB/s 0:03] lobby> (files being hashed, with no number yet, by name).
  const prompt = new InteractivePrompt({
    label: () => state.label || "(no room)",
    color,
    completer: (line: string) => completeLine(line, state),
    // Lines typed but not sent yet (disconnected, or over the server's rate limit).
    status: () =>
      views.status() +
      (state.away !== null ? "[away] " : "") +
      (client.heldRequests > 0 ? `[${client.heldRequests} pending] ` : ""),
    onLine: (line: string) => {
      if (closing) return;
      // Plain text is echoed from the server's ack (with its time): drop the typed copy.
      if (line.trim() !== "" && (!line.startsWith("/") || line.startsWith("//"))) {
        prompt.eraseEntered(line);
      }
      void executeLine(ctx, line);
    },
    onClose: () => void finish(),
    // Alt+1..9: the view of that number, as /window N.
    onAltDigit: (digit: number) => {
      if (!closing) void executeLine(ctx, `/window ${digit}`);
    },
  });
  const print = (text: string): void => prompt.print(text);
  const localLog = options.logDir === undefined
    ? null
    : new LocalLog(options.logDir, client.nick, (text) => print(`! ${text}`));
  const refreshPrompt = (): void => prompt.refresh();

  let unread: number[] = [];
  let readTimer: ReturnType<typeof setTimeout> | undefined;
  const markRead = (id: number): void => {
    unread.push(id);
    readTimer ??= setTimeout(() => {
      const ids = unread;
      unread = [];
      readTimer = undefined;
      client.read(ids).catch(() => {});
    }, 250);
  };

  /** Shows an item; false when it was only kept in a view that is not current. */
  const show = (item: DisplayItem): boolean => {
    const repeated = state.repeatsPresence(item);
    state.observe(item);
    localLog?.record(item);
    if (repeated) return true; // said already (a contact's presence comes twice)
    const lines = formatItem(item, render);
    const printed = views.accept(item, lines);
    if (printed && lines.length > 0) print(lines.join("\n"));
    refreshPrompt();
    return printed;
  };

  const privates = new PrivateSessions(client, {
    onEvent: (event: PrivateEvent) => {
      if (ringsBell(event, client.nick)) prompt.bell();
      show(event);
    },
  });

  const files = new FileTransfers(client, {
    ...fileOptions(options),
    onEvent: (event) => {
      if (event.type === "file_progress" || event.type === "file_hashing") {
        prompt.progress(
          event.type === "file_hashing" ? `hashing ${event.name}` : String(event.file),
          event,
        );
        return;
      }
      if (
        event.type === "file_saved" || event.type === "file_failed" || event.type === "file_sent"
      ) {
        prompt.done(String(event.file));
      }
      show(event);
    },
  });

  const ctx: CommandContext = {
    client,
    state,
    privates,
    files,
    // A switch shows at most a screenful of the view's lines.
    views: {
      list: () => views.list(),
      switchTo: (name: string) => {
        const view = views.switchTo(name, Math.max(1, (process.stdout.rows || 24) - 2));
        for (const id of view.dmIds) markRead(id); // shown only now
        return view;
      },
    },
    show,
    quit: () => void finish(),
    columns: terminalColumns,
  };

  const onEvent = (event: ChatEvent): void => {
    if (ringsBell(event, client.nick)) prompt.bell();
    // An idle logout is told once (the closed line), and is no failure.
    if (event.type === "closed" && event.code !== undefined && !ENDED_ON_PURPOSE.has(event.code)) {
      failedReason = event.reason ?? event.code;
    }
    // A direct message shown is read (one kept in another view, when /window shows it).
    if (show(event) && event.type === "dm" && nameKey(event.from) !== nameKey(client.nick)) {
      markRead(event.id);
    }
    if (event.type === "closed" && !closing) void finish();
  };
  const pump = (async () => {
    for await (const event of client.events) onEvent(event);
  })();

  let finished: Promise<void> | null = null;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => resolveDone = resolve);
  const finish = (): Promise<void> => {
    finished ??= (async () => {
      closing = true;
      clearTimeout(readTimer);
      prompt.close(); // the prompt goes; what follows starts on a clean line
      await files.close();
      await privates.close();
      if (!client.closed) await leave(client);
      await pump;
      resolveDone();
    })();
    return finished;
  };

  print(
    `* connected to ${formatServerAddress(client.address)} as ${sanitize(client.nick)}` +
      ` — /help lists the commands, /quit leaves`,
  );
  // Joined already or not, `/join` shows the room's recent lines (a member is not announced
  // again). Scripted runs join only when they must: their output is what they asked for.
  void executeLine(ctx, `/join ${options.room}`);
  prompt.start();
  await done;
  if (failedReason !== null) throw new Error(`the connection ended: ${sanitize(failedReason)}`);
}
