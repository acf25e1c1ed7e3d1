/**
 * Peer sessions over loopback whose two sides compute ChaCha20-Poly1305 differently, one
 * through the system's OpenSSL (FFI), the other through `node:crypto`: the bytes on the
 * wire are the same, so a file crosses either way.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { connectPeer } from "../peer/connect.ts";
import { PeerFileTransfers } from "../peer/file_transfer.ts";
import { listening } from "./helpers/peer_listener.ts";
import type { RecordAead, RecordOpener, RecordSealer } from "../peer/record_aead.ts";
import { nodeRecordAead } from "../peer/record_aead_node.ts";
import { loadOpenSslRecordAead } from "../peer/record_aead_openssl.ts";
import type { PeerSession } from "../peer/session.ts";
import type { FileTransferEvent } from "../transport/file_transfer_events.ts";
import { sha256Of, withTempDir, writeRandomFile } from "./helpers/files.ts";

const openssl = loadOpenSslRecordAead();

/** `aead`, counting the bytes its sealers and openers transform. */
function counting(aead: RecordAead): RecordAead & { sealed: number; opened: number } {
  const counted = {
    name: aead.name,
    sealed: 0,
    opened: 0,
    sealer(key: Uint8Array): RecordSealer {
      const inner = aead.sealer(key);
      return {
        begin: (nonce, aad, length) => inner.begin(nonce, aad, length),
        update: (input, output) => {
          counted.sealed += input.length;
          inner.update(input, output);
        },
        finish: (tag) => inner.finish(tag),
      };
    },
    opener(key: Uint8Array): RecordOpener {
      const inner = aead.opener(key);
      return {
        begin: (nonce, aad, length) => inner.begin(nonce, aad, length),
        update: (input, output) => {
          counted.opened += input.length;
          inner.update(input, output);
        },
        finish: (tag) => inner.finish(tag),
      };
    },
  };
  return counted;
}

/** Sends a file from alice (`aliceAead`) to bob (`bobAead`) over loopback. */
async function sendFile(dir: string, aliceAead: RecordAead, bobAead: RecordAead) {
  const path = join(dir, "file.bin");
  const size = 5 * 1024 * 1024 + 77;
  const sha = await writeRandomFile(path, size, 31);
  const bobListening = await listening("bob", { aead: bobAead });
  const alice = await connectPeer({
    host: "127.0.0.1",
    port: bobListening.port,
    nick: "alice",
    aead: aliceAead,
  });
  const bob = await bobListening.session;
  const events: FileTransferEvent[] = [];
  const bobFiles = new PeerFileTransfers(bob, {
    acceptDir: join(dir, "dl"),
    onEvent: (e) => events.push(e),
  });
  const aliceFiles = new PeerFileTransfers(alice, { onEvent: () => {} });
  const follow = async (session: PeerSession, files: PeerFileTransfers) => {
    try {
      for await (const event of session) if (event.type === "file") await files.handle(event);
    } finally {
      await files.close();
    }
  };
  const followed = [follow(alice, aliceFiles), follow(bob, bobFiles)];
  await aliceFiles.send(path);
  await alice.close();
  await Promise.all(followed);
  const saved = events.find((e) => e.type === "file_saved");
  assert.ok(saved?.type === "file_saved", JSON.stringify(events));
  assert.equal(await sha256Of(saved.path), sha);
  return size;
}

for (const [sender, receiver] of [["openssl", "node"], ["node", "openssl"]] as const) {
  Deno.test(`a file from a peer sealing with ${sender} to one opening with ${receiver}`, async () => {
    if (openssl === null) return; // no libcrypto 3 here: node's backend alone is tested
    const backends = { node: nodeRecordAead, openssl };
    const aliceAead = counting(backends[sender]);
    const bobAead = counting(backends[receiver]);
    await withTempDir(async (dir) => {
      const size = await sendFile(dir, aliceAead, bobAead);
      // Each side's records went through the backend it was given.
      assert.ok(aliceAead.sealed >= size, `alice sealed ${aliceAead.sealed}`);
      assert.ok(bobAead.opened >= size, `bob opened ${bobAead.opened}`);
      assert.ok(bobAead.sealed > 0 && aliceAead.opened > 0, "the answers came back");
    });
  });
}
