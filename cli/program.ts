/**
 * The root `chat` command: global flags, help and version, error handling and exit codes.
 * Each mode (`serve`, `connect`, `peer`) is a commander `Command` built in its own module and
 * handed to {@linkcode buildProgram}.
 *
 * Exit codes: 0 on success (and for `--help`, `--version`), 1 on a runtime failure (one line
 * on stderr: `chat <mode>: <what went wrong>`), 2 on a usage error (one line plus the usage
 * on stderr). An action reports a usage error by throwing {@linkcode UsageError} or calling
 * `command.error(message)`; anything else it throws is a runtime failure.
 *
 * @module
 */

import { Command, CommanderError, Option } from "commander";
import { getLogger } from "@logtape/logtape";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, oneLine, UsageError } from "./errors.ts";
import { type CliLogLevel, LOG_LEVELS, resetLogging, setupLogging } from "./logging.ts";
import { VERSION } from "./version.ts";

/** The log level of each mode when `--log-level` is not given; other modes use `warning`. */
export const DEFAULT_LOG_LEVELS: Readonly<Record<string, CliLogLevel>> = Object.freeze({
  serve: "info",
});

/** The global options, parsed from anywhere on the command line. */
export interface GlobalOptions {
  /** `--log-level`. */
  logLevel?: CliLogLevel;
  /** `--log-file`. */
  logFile?: string;
  /** `--log-json`. */
  logJson?: boolean;
}

const log = getLogger(["chat", "cli"]);
const encoder = new TextEncoder();

function writeTo(stream: { writeSync(p: Uint8Array): number }, text: string): void {
  let bytes = encoder.encode(text);
  try {
    while (bytes.length > 0) bytes = bytes.subarray(stream.writeSync(bytes));
  } catch (err) {
    // A closed pipe (`chat --help | head -1`) is not worth failing over.
    if (!(err instanceof Deno.errors.BrokenPipe)) throw err;
  }
}

/**
 * Makes commander report a usage error of `command` as one line prefixed with `label`,
 * followed by the usage line and a pointer to the full help.
 */
function reportErrorsAs(command: Command, label: string): void {
  command.configureOutput({ outputError: (text, write) => write(`${label}: ${text}`) });
  command.showHelpAfterError(
    `Usage: ${label} ${command.usage()}\nRun '${label} --help' for the full help.`,
  );
}

/** The mode whose action is running, for prefixing runtime errors. */
const activeCommand = new WeakMap<Command, Command>();

/**
 * Builds the root `chat` command with the given modes as subcommands. The modes inherit
 * the root's output and error settings, so their errors also end up as exit code 2.
 *
 * @example
 * ```ts ignore
 * import { buildProgram } from "./program.ts";
 * import { serveCommand } from "./serve.ts";
 * const program = buildProgram([serveCommand()]);
 * await program.parseAsync(["serve", "--port", "0"], { from: "user" });
 * ```
 */
export function buildProgram(commands: Command[]): Command {
  const program = new Command("chat")
    .description(
      "A chat toolkit in one binary: a server, a terminal client and direct encrypted peer-to-peer chat.",
    )
    .usage("[global options] <mode> [options]")
    .version(VERSION, "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show help (`chat <mode> --help` for a mode's options)")
    .addOption(
      new Option(
        "--log-level <level>",
        "lowest log level written (default: info for serve, warning otherwise)",
      ).choices(LOG_LEVELS),
    )
    .option("--log-file <file>", "append log records to FILE instead of writing them to stderr")
    .option("--log-json", "write log records as JSON lines")
    .exitOverride()
    .configureOutput({
      writeOut: (text) => writeTo(Deno.stdout, text),
      writeErr: (text) => writeTo(Deno.stderr, text),
      getOutHasColors: () => !Deno.noColor && Deno.stdout.isTerminal(),
      getErrHasColors: () => !Deno.noColor && Deno.stderr.isTerminal(),
    })
    .configureHelp({ showGlobalOptions: true })
    .helpCommand("help [mode]", "show help for a mode");
  for (const command of commands) {
    command.copyInheritedSettings(program);
    command.helpOption("-h, --help", "show this help");
    reportErrorsAs(command, `chat ${command.name()}`);
    program.addCommand(command);
  }
  reportErrorsAs(program, "chat");
  program.addHelpText(
    "after",
    "\nExamples:\n" +
      "  chat serve --port 44444\n" +
      "  chat connect --host 192.168.1.5 --nick alice\n" +
      "  chat peer --listen --nick alice\n" +
      "  chat peer --connect 192.168.1.5:40000 --nick bob",
  );
  program.hook("preAction", async (root, actionCommand) => {
    activeCommand.set(root, actionCommand);
    const opts = root.opts<GlobalOptions>();
    const level = opts.logLevel ?? DEFAULT_LOG_LEVELS[actionCommand.name()] ?? "warning";
    await setupLogging({ level, file: opts.logFile, json: opts.logJson === true });
  });
  return program;
}

/**
 * `deno task serve -- --port 1` passes the `--` on to the program, where commander would
 * take it as the end of the options. No mode takes arguments, so a `--` right after the
 * mode name is dropped.
 */
function dropTaskSeparator(args: string[], commands: Command[]): string[] {
  const names = new Set(commands.map((command) => command.name()));
  const at = args.findIndex((arg) => names.has(arg));
  if (at === -1 || args[at + 1] !== "--") return args;
  return [...args.slice(0, at + 1), ...args.slice(at + 2)];
}

/**
 * Runs `chat` with `args` (without the program name) and returns the exit code instead of
 * exiting, so it can be called from tests. Errors are printed to stderr.
 *
 * @example
 * ```ts ignore
 * import { runCli } from "./program.ts";
 * import { serveCommand } from "./serve.ts";
 * Deno.exit(await runCli(Deno.args, [serveCommand()]));
 * ```
 */
export async function runCli(args: string[], commands: Command[]): Promise<number> {
  const program = buildProgram(commands);
  try {
    await program.parseAsync(dropTaskSeparator(args, commands), { from: "user" });
    return Deno.exitCode || EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    const active = activeCommand.get(program);
    if (err instanceof UsageError) {
      try {
        (active ?? program).error(`error: ${oneLine(err)}`, { code: "chat.usage" });
      } catch {
        // commander reported it and threw because of exitOverride
      }
      return EXIT_USAGE;
    }
    log.debug("{mode} failed: {error}", { mode: active?.name() ?? "chat", error: err });
    const prefix = active === undefined ? "chat" : `chat ${active.name()}`;
    writeTo(Deno.stderr, `${prefix}: ${oneLine(err)}\n`);
    return EXIT_FAILURE;
  } finally {
    await resetLogging();
  }
}
