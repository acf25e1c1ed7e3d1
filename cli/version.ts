/**
 * The program's version, read from deno.json so there is one place to bump it.
 *
 * @module
 */

import denoJson from "../deno.json" with { type: "json" };

/** The version of `chat`, as written in deno.json (e.g. `0.1.0`). */
export const VERSION: string = denoJson.version;
