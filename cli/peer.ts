/**
 * The `chat peer` mode: a direct, end-to-end encrypted chat between two machines, no
 * server. One side runs `chat peer --listen`, which prints the command the other side
 * runs (`chat peer --connect HOST:PORT`). Both then show the same short authentication
 * string (SAS); the users compare it to rule out a man in the middle.
 *
 * The session is line-oriented: each line on stdin is sent as one message, `/quit` (or
 * the end of stdin, or Ctrl-C) says goodbye and exits 0. Incoming messages print as
 * `HH:MM <nick> text` with control characters neutralised. In a terminal the session has
 * the line editor of `chat connect` (`client/interactive_prompt.ts`): an `@nick>` prompt,
 * incoming lines printed above what is being typed, history, Tab completion, the bell on
 * each message, your own lines shown with their time and nick, transfers in the prompt.
 * With `--json`, stdout carries one JSON object per line instead:
 *
 * ```text
 * {"type":"listening","port":40123,"addresses":["192.168.1.5:40123", ...],"command":"..."}
 * {"type":"sas","sas":"12345 67890 ...","peer":"bob","role":"responder"}
 * {"type":"text","from":"bob","ts":1700000000000,"text":"hi"}
 * {"type":"left","from":"bob"}
 * {"type":"error","code":"connection_lost","message":"..."}
 * ```
 *
 * With a session code, the session keys are also bound to the code through a PAKE
 * (CPace): a man in the middle without it fails the handshake (`pake_failed`) and learns
 * nothing he could test offline. The code comes from `--code-file FILE`, or from the
 * environment variable `CHAT_PEER_CODE`, never from the command line (other users can
 * read it in the process list); `--listen --generate-code` makes one up and prints it
 * (`{"type":"code","code":"7-maple-otter"}` with `--json`). Both sides must use the
 * same code, or neither.
 *
 * Files: `--send PATH` (repeatable) offers files once connected, `/send PATH` offers one
 * during the session; the other side sees the offer (name, size) and answers
 * `/accept N` (into `--download-dir`, default `~/Downloads`) or `/decline N`, or accepts
 * every offer into a folder with `--accept-files DIR`. Files travel inside the
 * encrypted session, which authenticates every byte, are saved under a safe name and
 * never overwrite anything (see `peer/file_transfer.ts`); an interrupted transfer
 * resumes when the same file is offered again. On a terminal a progress bar shows on
 * stderr; with `--json` transfers report `file_*` objects (progress a few per second).
 * The end of input waits for transfers under way before leaving.
 *
 * Exit codes: 0 when either side said goodbye, 1 when the session failed (the reason on
 * stderr, and as an `error` object with `--json`; `timeout` when the other side stopped
 * answering: nothing received for 45 s, see the keepalive in `peer/session.ts`), 2 on a
 * usage error, 130 when Ctrl-C stops the wait for a peer.
 *
 * @module
 */

import { Command, Option } from "commander";
import { createInterface } from "node:readline";
import process from "node:process";
import { MAX_TEXT_LENGTH, nameProblem } from "../protocol/names.ts";
import { splitText } from "../protocol/split_text.ts";
import { generateCode, normalizeCode } from "../peer/code.ts";
import { connectPeer } from "../peer/connect.ts";
import { findPeerError, PeerError } from "../peer/errors.ts";
import { listenPeer } from "../peer/listen.ts";
import { formatChatLine, formatItem, formatTime } from "../client/render.ts";
import { wrapLine } from "../client/terminal_ui.ts";
import { ProgressLine } from "../client/progress_bar.ts";
import { InteractivePrompt } from "../client/interactive_prompt.ts";
import { PeerFileError, PeerFileTransfers } from "../peer/file_transfer.ts";
import type { PeerSession, PeerTextEvent } from "../peer/session.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { oneLine, UsageError } from "./errors.ts";
import { parseHostPort, parsePort } from "./options.ts";
import { formatHostPort, listInterfaces, reachableHosts } from "./addresses.ts";

/** The options of `chat peer` as commander parses them. */
export interface PeerOptions {
  /** `--listen`. */
  listen?: boolean;
  /** `--connect HOST:PORT`. */
  connect?: { host: string; port: number };
  /** `--host` (with `--listen`). */
  host: string;
  /** `--port` (with `--listen`). */
  port: number;
  /** `--nick`. */
  nick?: string;
  /** `--json`. */
  json?: boolean;
  /** `--code-file FILE`. */
  codeFile?: string;
  /** `--generate-code` (with `--listen`). */
  generateCode?: boolean;
  /** `--code`: refused (secrets never come from argv). */
  code?: string;
  /** `--send PATH`, repeatable: files to offer once connected. */
  send?: string[];
  /** `--accept-files DIR`: accept every file offered, into DIR. */
  acceptFiles?: string;
  /** `--download-dir DIR`: where `/accept` saves files. */
  downloadDir?: string;
}

/** The environment variable a session code may come from. */
export const CODE_ENV = "CHAT_PEER_CODE";

/** Exit code when Ctrl-C stops the wait for a peer. */
const EXIT_INTERRUPTED = 130;

/**
 * Builds the `peer` subcommand with its options and action.
 *
 * @example
 * ```ts ignore
 * import { buildProgram } from "./program.ts";
 * import { peerCommand } from "./peer.ts";
 * await buildProgram([peerCommand()]).parseAsync(["peer", "--listen"], { from: "user" });
 * ```
 */
export function peerCommand(): Command {
  return new Command("peer")
    .description("chat directly with one other machine, end-to-end encrypted (no server)")
    .option("--listen", "wait for the other side to connect (prints the command it runs)")
    .option("--connect <host:port>", "connect to a side that listens", parseHostPort)
    .option("--host <host>", "address to listen on (with --listen)", "0.0.0.0")
    .option("--port <port>", "port to listen on; 0 picks a free one (with --listen)", parsePort, 0)
    .option("--nick <name>", "your nick, shown to the other side (default: your user name)")
    .option("--json", "write one JSON object per line on stdout")
    .option(
      "--code-file <file>",
      `read a session code from FILE (else ${CODE_ENV}); both sides must use the same code`,
    )
    .option("--generate-code", "with --listen: make up a session code and print it")
    .option(
      "--send <path>",
      "offer this file once connected (repeatable)",
      (path: string, previous: string[] = []) => [...previous, path],
    )
    .option("--accept-files <dir>", "accept every file offered, saving it into DIR")
    .option("--download-dir <dir>", "where /accept saves files (default: ~/Downloads)")
    .addOption(new Option("--code <words>").hideHelp())
    .addHelpText(
      "after",
      "\nType a line to send it; /quit (or end of input, or Ctrl-C) leaves; /help lists\n" +
        "the commands. /send PATH offers a file; /accept N or /decline N answers an offer.\n" +
        "Compare the numbers shown after connecting with your peer (in person, by phone):\n" +
        "if they differ, someone is intercepting the connection.\n\n" +
        "With a session code (told to each other in person or by phone), a man in the\n" +
        "middle cannot even complete the connection.\n\n" +
        "Examples:\n" +
        "  chat peer --listen --nick alice\n" +
        "  chat peer --connect 192.168.1.5:40123 --nick bob\n" +
        "  chat peer --connect 192.168.1.5:40123 --nick bob --send photo.jpg\n" +
        "  chat peer --listen --generate-code --nick alice\n" +
        `  ${CODE_ENV}=7-maple-otter chat peer --connect 192.168.1.5:40123 --nick bob`,
    )
    .action(async (options: PeerOptions) => {
      await runPeer(options);
    });
}

/** Runs a peer session with `options`; see the module documentation. */
export async function runPeer(options: PeerOptions): Promise<void> {
  if (options.listen === true && options.connect !== undefined) {
    throw new UsageError("give either --listen or --connect HOST:PORT, not both");
  }
  if (options.listen !== true && options.connect === undefined) {
    throw new UsageError("give --listen to wait for a peer, or --connect HOST:PORT to reach one");
  }
  const nick = options.nick ?? defaultNick();
  const problem = nameProblem(nick);
  if (problem !== null) {
    throw new UsageError(
      options.nick === undefined
        ? `your user name is not a valid nick (${problem}); give one with --nick NAME`
        : `--nick ${problem}`,
    );
  }
  const code = await resolveCode(options);
  const out = options.json ? jsonOutput() : humanOutput();
  if (code !== undefined && options.generateCode === true) out.code(code);
  try {
    const session = await open(options, nick, out, code);
    if (session === null) return;
    out.connected(session);
    const error = await converse(session, out, options);
    if (error !== undefined) throw error;
  } catch (err) {
    if (err instanceof PeerError) out.error(err);
    throw err;
  }
}

/**
 * The session code: `--code-file`, else `CHAT_PEER_CODE`, else a new one with
 * `--generate-code`; `undefined` for none.
 *
 * @throws {UsageError} for `--code`, conflicting sources, or an unusable code.
 */
export async function resolveCode(options: PeerOptions): Promise<string | undefined> {
  if (options.code !== undefined) {
    throw new UsageError(
      `the code is never taken from the command line (other users can see it): ` +
        `use --code-file FILE or ${CODE_ENV}`,
    );
  }
  const fromEnv = envVar(CODE_ENV);
  const given = [
    options.codeFile !== undefined ? "--code-file" : null,
    fromEnv !== undefined && fromEnv !== "" ? CODE_ENV : null,
    options.generateCode === true ? "--generate-code" : null,
  ].filter((source) => source !== null);
  if (given.length > 1) {
    throw new UsageError(`give the session code one way, not with ${given.join(" and ")}`);
  }
  if (options.generateCode === true) {
    if (options.listen !== true) {
      throw new UsageError(
        `--generate-code goes with --listen; the connecting side reads the code with ` +
          `--code-file FILE or ${CODE_ENV}`,
      );
    }
    return generateCode();
  }
  let raw: string;
  let source: string;
  if (options.codeFile !== undefined) {
    source = `--code-file ${options.codeFile}`;
    try {
      raw = await Deno.readTextFile(options.codeFile);
    } catch (err) {
      const reason = err instanceof Deno.errors.NotFound
        ? "no such file"
        : err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotCapable
        ? "permission denied"
        : oneLine(err);
      throw new UsageError(`cannot read the code file ${options.codeFile}: ${reason}`);
    }
  } else if (fromEnv !== undefined && fromEnv !== "") {
    source = CODE_ENV;
    raw = fromEnv;
  } else {
    return undefined;
  }
  try {
    return normalizeCode(raw);
  } catch (err) {
    throw new UsageError(`${source}: ${oneLine(err)}`);
  }
}

function envVar(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no permission to read it
  }
}

/** Connects or listens; `null` when Ctrl-C stopped the wait for a peer. */
async function open(
  options: PeerOptions,
  nick: string,
  out: Output,
  code: string | undefined,
): Promise<PeerSession | null> {
  const withCode = code !== undefined ? { code } : {};
  if (options.connect !== undefined) {
    return await connectPeer({ ...options.connect, nick, ...withCode });
  }
  const interrupt = new AbortController();
  const stop = onInterrupt(() => interrupt.abort());
  try {
    return await listenPeer({
      host: options.host,
      port: options.port,
      nick,
      ...withCode,
      signal: interrupt.signal,
      onListening: (addr) => out.listening(options.host, addr.port, code !== undefined),
      onRejected: (error, remote, codeFailures) => {
        const tries = codeFailures
          ? ` (${codeFailures.count} of ${codeFailures.limit} tries with the code used)`
          : "";
        warn(`rejected a connection from ${describeAddr(remote)}: ${error.message}${tries}`);
      },
    });
  } catch (err) {
    if (err instanceof PeerError && err.code === "aborted" && interrupt.signal.aborted) {
      warn("stopped waiting for a peer");
      Deno.exitCode = EXIT_INTERRUPTED;
      return null;
    }
    throw err;
  } finally {
    stop();
  }
}

/** How the session is shown: human text or JSON lines. */
interface Output {
  file(event: FileTransferEvent): void;
  code(code: string): void;
  listening(host: string, port: number, withCode: boolean): void;
  connected(session: PeerSession): void;
  text(event: PeerTextEvent): void;
  left(nick: string): void;
  error(error: PeerError): void;
}

function humanOutput(): Output {
  const color = !Deno.noColor && Deno.stdout.isTerminal();
  const bar = new ProgressLine(
    (text) => writeAll(Deno.stderr, text),
    Deno.stderr.isTerminal(),
    () => terminalColumns(),
  );
  return {
    file(event) {
      if (event.type === "file_progress" || event.type === "file_hashing") {
        if (activePrompt === null) bar.update(event);
        else {
          activePrompt.progress(
            event.type === "file_hashing" ? `hashing ${event.name}` : String(event.file),
            event,
          );
        }
        return;
      }
      bar.clear();
      if ("file" in event) activePrompt?.done(String(event.file));
      for (const line of formatItem(event, { color })) print(line);
    },
    code(code) {
      print(`Session code: ${code}`);
      print("Tell it to your peer (in person or by phone); it works for this session only.");
    },
    listening(host, port, withCode) {
      const addresses = reachableAddresses(host, port);
      print("Listening on:");
      for (const address of addresses) print(`  ${address}`);
      print("On the other machine, run:");
      print(`  ${connectCommand(addresses[0], withCode)}`);
      if (withCode) print(`  (FILE holds the session code; or set ${CODE_ENV} instead)`);
      print("Waiting for one peer… (Ctrl-C to stop)");
    },
    connected(session) {
      const from = session.remoteAddr ? ` (${describeAddr(session.remoteAddr)})` : "";
      print(`Connected to ${session.remoteNick}${from}, end-to-end encrypted.`);
      print(`Compare with your peer: ${session.sas}`);
      print("If the numbers differ, type /quit: someone may be intercepting the connection.");
      print("Type a line to send it; /quit leaves.");
    },
    text(event) {
      bar.clear();
      activePrompt?.bell();
      const line = formatChatLine({ ts: Date.now(), from: event.from, text: event.text }, {
        color,
      });
      // The line editor wraps what it prints; elsewhere on a terminal, long lines continue
      // indented too: the peer cannot fake a line of ours.
      if (activePrompt !== null) print(line);
      else {
        for (const row of wrapLine(line, Deno.stdout.isTerminal() ? terminalColumns() : 0)) {
          print(row);
        }
      }
    },
    left(nick) {
      bar.clear();
      print(`${nick} left.`);
    },
    error() {
      // runCli prints the reason on stderr
    },
  };
}

function jsonOutput(): Output {
  const emit = (value: object): void => print(JSON.stringify(value));
  return {
    file(event) {
      emit(event);
    },
    code(code) {
      emit({ type: "code", code });
    },
    listening(host, port, withCode) {
      const addresses = reachableAddresses(host, port);
      emit({
        type: "listening",
        port,
        addresses,
        command: connectCommand(addresses[0], withCode),
      });
    },
    connected(session) {
      emit({ type: "sas", sas: session.sas, peer: session.remoteNick, role: session.role });
    },
    text(event) {
      emit({ type: "text", from: event.from, ts: event.ts, text: event.text });
    },
    left(nick) {
      emit({ type: "left", from: nick });
    },
    error(error) {
      emit({ type: "error", code: error.code, message: error.message });
    },
  };
}

/** The command the other side runs to reach `address`. */
function connectCommand(address: string, withCode: boolean): string {
  return `chat peer --connect ${address} --nick NAME${withCode ? " --code-file FILE" : ""}`;
}

/**
 * Runs the session until it ends: stdin lines go out, incoming messages are shown.
 * Returns the error that ended it, or `undefined` when either side said goodbye.
 */
async function converse(
  session: PeerSession,
  out: Output,
  options: PeerOptions,
): Promise<PeerError | undefined> {
  const files = new PeerFileTransfers(session, {
    onEvent: (event) => out.file(event),
    ...(options.downloadDir !== undefined ? { downloadDir: options.downloadDir } : {}),
    ...(options.acceptFiles !== undefined ? { acceptDir: options.acceptFiles } : {}),
  });
  // Files being sent; the end of input waits for them (and for files being received).
  const transfers = new Set<Promise<void>>();
  const sendFile = (path: string): void => {
    const transfer = files.send(path).catch((err) => {
      if (err instanceof Error && "code" in err && err.code === "not_a_file") {
        warn(`not sent: ${err.message}`);
      }
    }).finally(() => transfers.delete(transfer));
    transfers.add(transfer);
  };
  for (const path of options.send ?? []) sendFile(path);
  // Lines are sent one after another, in order; the end of input waits for them.
  let sending: Promise<void> = Promise.resolve();
  let leaving = false;
  const leave = (): void => {
    if (leaving) return;
    leaving = true;
    sending = sending.then(async () => {
      while (transfers.size > 0) await Promise.allSettled([...transfers]);
      await files.idle();
      await session.close();
    });
  };
  const onLine = (line: string, echo?: (text: string) => void): void => {
    sending = sending.then(() =>
      localCommand(files, line, sendFile) ? undefined : sendLine(session, line, leave, echo)
    );
  };
  let input: ReturnType<typeof createInterface> | null = null;
  let prompt: InteractivePrompt | null = null;
  if (!options.json && Deno.stdin.isTerminal()) {
    const color = !Deno.noColor && Deno.stdout.isTerminal();
    const editor = new InteractivePrompt({
      label: () => `@${session.remoteNick}`,
      color,
      completer: (line) => completePeerLine(line, session.remoteNick),
      onLine: (line) => {
        const text = line.trim();
        if (text === "") return;
        if (/^\/(help|send|accept|decline)(\s|$)/.test(text)) {
          onLine(line);
          return;
        }
        if (text === "/quit") {
          editor.close();
          leave();
          return;
        }
        // Shown again once sent, with its time and nick, like the other side's lines.
        editor.eraseEntered(line);
        onLine(line, (sent) => {
          print(formatChatLine({ ts: Date.now(), from: session.localNick, text: sent }, {
            color,
          }));
        });
      },
      onClose: leave,
    });
    prompt = editor;
    activePrompt = editor;
    editor.start();
  } else {
    input = createInterface({ input: process.stdin, terminal: false, crlfDelay: Infinity });
    input.on("line", (line: string) => onLine(line));
    input.on("close", leave);
  }
  const stop = onInterrupt(leave);

  let failure: PeerError | undefined;
  try {
    for await (const event of session) {
      if (event.type === "file") await files.handle(event);
      else if (event.type === "text") out.text(event);
      else out.left(event.from);
    }
  } catch (err) {
    failure = findPeerError(err) ??
      new PeerError("connection_lost", oneLine(err), { cause: err });
  } finally {
    stop();
    await files.close(failure?.message ?? "the session ended");
    if (prompt !== null) {
      activePrompt = null;
      prompt.close();
    }
    input?.removeAllListeners("line");
    input?.removeListener("close", leave);
    input?.close();
    process.stdin.destroy();
  }
  await sending;
  return failure;
}

/** The commands of a peer session, for `/help` and Tab completion. */
const PEER_COMMANDS: readonly (readonly [string, string])[] = [
  ["/accept N", "accept file offer N (into --download-dir)"],
  ["/decline N", "decline file offer N"],
  ["/help", "this list"],
  ["/quit", "say goodbye and leave"],
  ["/send PATH", "offer a file"],
];

/**
 * Runs `/help`, `/send PATH`, `/accept N` and `/decline N`; false when `line` is none of
 * them. Mistakes are reported on stderr; the session goes on.
 */
function localCommand(
  files: PeerFileTransfers,
  line: string,
  sendFile: (path: string) => void,
): boolean {
  const trimmed = line.replace(/\r$/, "").trim();
  if (trimmed === "/help") {
    print("Type a line to send it. Commands:");
    for (const [usage, what] of PEER_COMMANDS) print(`  ${usage.padEnd(12)} ${what}`);
    return true;
  }
  const match = /^\/(send|accept|decline)(?:\s+(.*))?$/.exec(trimmed);
  if (match === null) return false;
  const [, command, rest = ""] = match;
  const arg = rest.trim();
  if (command === "send") {
    if (arg === "") warn("usage: /send PATH");
    else sendFile(arg);
    return true;
  }
  const fid = /^#?(\d+)$/.exec(arg);
  if (fid === null) {
    warn(`usage: /${command} N (the number shown with the offer)`);
    return true;
  }
  try {
    if (command === "accept") {
      files.accept(Number(fid[1])).catch((err) => {
        if (err instanceof PeerFileError && err.code === "no_file") warn(err.message);
      });
    } else files.decline(Number(fid[1]));
  } catch (err) {
    warn(err instanceof Error ? err.message : String(err));
  }
  return true;
}

/**
 * Tab completion in a peer session: a command, a path after `/send`, else the peer's
 * nick.
 */
export function completePeerLine(line: string, peerNick: string): [string[], string] {
  if (/^\/\S*$/.test(line)) {
    const names = PEER_COMMANDS.map(([usage]) => usage.split(" ")[0]);
    return [names.filter((name) => name.startsWith(line.toLowerCase())), line];
  }
  const send = /^\/send\s+(.*)$/.exec(line);
  if (send !== null) return [completePath(send[1]), send[1]];
  const word = /(\S*)$/.exec(line)![1];
  const at = word.startsWith("@") ? "@" : "";
  const hit = peerNick.toLowerCase().startsWith(word.slice(at.length).toLowerCase());
  return [hit ? [at + peerNick] : [], word];
}

/** The entries of the folder of `partial` whose names start like it (folders end in `/`). */
function completePath(partial: string): string[] {
  const slash = partial.lastIndexOf("/");
  const dir = slash < 0 ? "" : partial.slice(0, slash + 1);
  const start = partial.slice(slash + 1);
  try {
    const hits: string[] = [];
    for (const entry of Deno.readDirSync(dir === "" ? "." : dir)) {
      if (!entry.name.startsWith(start) || (start === "" && entry.name.startsWith("."))) continue;
      hits.push(dir + entry.name + (entry.isDirectory ? "/" : ""));
      if (hits.length >= 200) break;
    }
    return hits.sort();
  } catch {
    return [];
  }
}

async function sendLine(
  session: PeerSession,
  line: string,
  leave: () => void,
  echo?: (text: string) => void,
): Promise<void> {
  const text = line.replace(/\r$/, "");
  if (text.trim() === "/quit") {
    leave();
    return;
  }
  if (text.trim() === "" || session.closed) return;
  try {
    // A line longer than a message may be goes as several, split between words.
    for (const part of splitText(text, MAX_TEXT_LENGTH)) {
      await session.sendText(part);
      echo?.(part);
    }
  } catch (err) {
    // The session's iterator reports why it ended; only local refusals are worth a note.
    if (err instanceof PeerError && err.code === "invalid_text") warn(`not sent: ${err.message}`);
  }
}

/** Calls `handler` on Ctrl-C (and SIGTERM); returns the function that stops listening. */
function onInterrupt(handler: () => void): () => void {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  for (const signal of signals) Deno.addSignalListener(signal, handler);
  return () => {
    for (const signal of signals) Deno.removeSignalListener(signal, handler);
  };
}

/**
 * The `HOST:PORT` strings the other side can use to reach a listener bound to `host`:
 * for a wildcard address, this machine's non-loopback addresses first, then loopback;
 * otherwise just `host`.
 *
 * @example
 * ```ts
 * import { reachableAddresses } from "./peer.ts";
 * reachableAddresses("10.0.0.7", 40123); // ["10.0.0.7:40123"]
 * reachableAddresses("0.0.0.0", 40123, []); // ["127.0.0.1:40123"]
 * ```
 */
export function reachableAddresses(
  host: string,
  port: number,
  interfaces: Deno.NetworkInterfaceInfo[] = listInterfaces(),
): string[] {
  const hosts = reachableHosts(host, interfaces);
  if (host === "0.0.0.0" || host === "::") hosts.push("127.0.0.1");
  return hosts.map((h) => formatHostPort(h, port));
}

function describeAddr(addr: Deno.Addr): string {
  return "hostname" in addr ? formatHostPort(addr.hostname, addr.port) : addr.transport;
}

function defaultNick(): string {
  try {
    return Deno.env.get("USER") ?? Deno.env.get("USERNAME") ?? "peer";
  } catch {
    return "peer"; // no --allow-env
  }
}

const encoder = new TextEncoder();

function terminalColumns(): number {
  try {
    return Deno.consoleSize().columns;
  } catch {
    return 80;
  }
}

/**
 * The line editor of the session in a terminal, while there is one: what the session
 * prints goes above the line being typed. (`chat peer` runs one session per process.)
 */
let activePrompt: InteractivePrompt | null = null;

function print(line: string): void {
  if (activePrompt !== null) activePrompt.print(line);
  else writeAll(Deno.stdout, `${line}\n`);
}

function warn(line: string): void {
  if (activePrompt !== null) activePrompt.print(`${formatTime(Date.now())} ! ${line}`);
  else writeAll(Deno.stderr, `chat peer: ${line}\n`);
}

function writeAll(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
  } catch (err) {
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}
