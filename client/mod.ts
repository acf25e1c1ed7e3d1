/**
 * The chat client library: {@linkcode ChatClient} (a logged-in session with typed
 * requests, typed events and transparent reconnection), the slash-command table
 * shared by the terminal client's modes, and rendering for people and for JSON.
 *
 * @example
 * ```ts ignore
 * import { ChatClient } from "./mod.ts";
 * await using client = await ChatClient.connect({ port: 44444, nick: "alice", password: "s3cret-pw" });
 * await client.say("lobby", "hello");
 * ```
 *
 * @module
 */

export * from "./backoff.ts";
export * from "./chat_client.ts";
export * from "./chat_error.ts";
export * from "./commands.ts";
export * from "./event_queue.ts";
export * from "./file_transfer.ts";
export * from "./pinned_tls.ts";
export * from "./progress_bar.ts";
export * from "./render.ts";
export * from "./session_state.ts";
export * from "./terminal_ui.ts";
export * from "./server_list.ts";
