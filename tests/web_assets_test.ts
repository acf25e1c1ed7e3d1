/**
 * The browser client embedded in the server (server/web_assets.ts) is the bundle of
 * web/ as it is now: `deno task web` was run after the last change to the page.
 */

import assert from "node:assert/strict";
import { buildWebAssets } from "../scripts/build_web.ts";

Deno.test("web assets: the committed bundle is up to date with web/", async () => {
  const built = await buildWebAssets();
  const committed = await Deno.readTextFile(new URL("../server/web_assets.ts", import.meta.url));
  assert.ok(
    committed === built,
    "server/web_assets.ts is out of date with web/: run `deno task web` and commit it",
  );
});
