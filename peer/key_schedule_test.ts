import assert from "node:assert/strict";
import {
  confirmationMac,
  deriveSessionSecrets,
  LABELS,
  transcriptHash,
  verifyConfirmation,
} from "./key_schedule.ts";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("transcriptHash depends on order and on where one hello ends", async () => {
  const ab = await transcriptHash(enc("ab"), enc("c"));
  assert.equal(ab.length, 32);
  assert.deepEqual(await transcriptHash(enc("ab"), enc("c")), ab);
  assert.notDeepEqual(await transcriptHash(enc("a"), enc("bc")), ab);
  assert.notDeepEqual(await transcriptHash(enc("c"), enc("ab")), ab);
});

Deno.test("deriveSessionSecrets gives four different keys, the same on both sides", async () => {
  const sharedSecret = crypto.getRandomValues(new Uint8Array(32));
  const th = crypto.getRandomValues(new Uint8Array(32));
  const a = await deriveSessionSecrets({ sharedSecret, transcriptHash: th });
  const b = await deriveSessionSecrets({ sharedSecret, transcriptHash: th });
  assert.deepEqual(a, b);
  const keys = [
    a.initiatorToResponder,
    a.responderToInitiator,
    a.confirmInitiator,
    a.confirmResponder,
  ];
  for (const key of keys) assert.equal(key.length, 32);
  assert.equal(new Set(keys.map((k) => k.toHex())).size, 4);
  assert.ok(sharedSecret.some((b) => b !== 0), "the caller's secret is left alone");
});

Deno.test("deriveSessionSecrets changes with the transcript and with a psk", async () => {
  const sharedSecret = crypto.getRandomValues(new Uint8Array(32));
  const th = crypto.getRandomValues(new Uint8Array(32));
  const base = await deriveSessionSecrets({ sharedSecret, transcriptHash: th });
  const emptyPsk = await deriveSessionSecrets({
    sharedSecret,
    transcriptHash: th,
    psk: new Uint8Array(0),
  });
  assert.deepEqual(emptyPsk, base);
  const withPsk = await deriveSessionSecrets({ sharedSecret, transcriptHash: th, psk: enc("x") });
  assert.notDeepEqual(withPsk.initiatorToResponder, base.initiatorToResponder);
  const otherTh = new Uint8Array(th);
  otherTh[0] ^= 1;
  const moved = await deriveSessionSecrets({ sharedSecret, transcriptHash: otherTh });
  assert.notDeepEqual(moved.initiatorToResponder, base.initiatorToResponder);
});

Deno.test("confirmation MACs verify under their key only", async () => {
  const th = crypto.getRandomValues(new Uint8Array(32));
  const { confirmInitiator, confirmResponder } = await deriveSessionSecrets({
    sharedSecret: crypto.getRandomValues(new Uint8Array(32)),
    transcriptHash: th,
  });
  const mac = await confirmationMac(confirmInitiator, th);
  assert.equal(mac.length, 32);
  assert.ok(await verifyConfirmation(confirmInitiator, th, mac));
  assert.ok(!await verifyConfirmation(confirmResponder, th, mac));
  const otherTh = new Uint8Array(th);
  otherTh[5] ^= 0x80;
  assert.ok(!await verifyConfirmation(confirmInitiator, otherTh, mac));
});

Deno.test("every label is distinct and versioned", () => {
  const labels = Object.values(LABELS);
  assert.equal(new Set(labels).size, labels.length);
  for (const label of labels) assert.ok(label.startsWith("chat-peer/1 "), label);
});
