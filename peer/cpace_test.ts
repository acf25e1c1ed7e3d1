/**
 * CPace (CPACE-RISTR255-SHA512) against the test vectors of draft-irtf-cfrg-cpace-21,
 * appendix B.3 ("Test vector for CPace using group ristretto255 and hash SHA-512").
 */

import assert from "node:assert/strict";
import {
  calculateGenerator,
  CPACE_DSI,
  deriveIsk,
  finishCpace,
  generatorString,
  IDENTITY,
  lvCat,
  prependLen,
  sampleScalar,
  scalarMult,
  scalarMultVfy,
  startCpace,
} from "./cpace.ts";
import { PeerError } from "./errors.ts";

const hex = (text: string): Uint8Array => Uint8Array.fromHex(text.replace(/\s+/g, ""));
const toHex = (bytes: Uint8Array): string => bytes.toHex();

// B.3.1 inputs.
const PRS = "Password";
const CI = hex("0b415f696e69746961746f720b425f726573706f6e646572");
const SID = hex("7e4b4791d6a8ef019b936c79fb7f2c57");
// B.3.1 outputs.
const GENERATOR_STRING = `
  11435061636552697374726574746f3235350850617373776f726464
  00000000000000000000000000000000000000000000000000000000
  00000000000000000000000000000000000000000000000000000000
  00000000000000000000000000000000000000000000000000000000
  00000000000000000000000000000000180b415f696e69746961746f
  720b425f726573706f6e646572107e4b4791d6a8ef019b936c79fb7f
  2c57`;
const HASH_RESULT = `
  da6d3ddc8802fca9058755ffd3ebde08a9c2c74945901a258482a288
  b6663af06bf645c93cd1c51512307199c80e84908916d983b34af772
  05f90851a657ee27`;
const G = "222b6b195fe84b1652badb6f6a3ae3d24341e7306967f0b8115b40d5698c7e56";
// B.3.2 and B.3.3.
const YA_SCALAR = "da3d23700a9e5699258aef94dc060dfda5ebb61f02a5ea77fad53f4ff0976d08";
const YA = "d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0eec482b9157";
const YB_SCALAR = "d2316b454718c35362d83d69df6320f38578ed5984651435e2949762d900b80d";
const YB = "3ea7e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f7258";
// B.3.4.
const K = "80b69a8a76457ab6a4d7f887a4bf6b55a2f80ac19c333f917a05fc9887c8b40f";
// B.3.5.
const TRANSCRIPT_IR = `
  20d6bac480f2c386c394efc7c47adb9925dcd2630b64f240c50f8d0e
  ec482b915703414461203ea7e0b19560d7c0b0f5734f63b955286dfa
  8232b5ebe63324e2d9e7433f725803414462`;
const ISK_INPUT = `
  15435061636552697374726574746f3235355f49534b107e4b4791d6
  a8ef019b936c79fb7f2c572080b69a8a76457ab6a4d7f887a4bf6b55
  a2f80ac19c333f917a05fc9887c8b40f20d6bac480f2c386c394efc7
  c47adb9925dcd2630b64f240c50f8d0eec482b915703414461203ea7
  e0b19560d7c0b0f5734f63b955286dfa8232b5ebe63324e2d9e7433f
  725803414462`;
const ISK_IR = `
  b69effbf61b51d56401c0f65601abe428de8206feaaf0e32198896dc
  ae7b35cd2b38950a39dfd5d4a79164614c2984f7daa460b588c1e80c
  3fa2068af7900447`;
// B.3.10 and B.3.11.
const S = "7cd0e075fa7955ba52c02759a6c90dbbfc10e6d40aea8d283e407d88cf538a05";
const X = "2c3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c";
const S_TIMES_X = "7c13645fe790a468f62c39beb7388e541d8405d1ade69d1778c5fe3e7f6b600e";
const Y_I1 = "2b3c6b8c4f3800e7aef6864025b4ed79bd599117e427c41bd47d93d654b4a51c";

Deno.test("cpace: prepend_len is LEB128", () => {
  assert.deepEqual([...prependLen(new Uint8Array(0))], [0]);
  assert.deepEqual([...prependLen("abc")], [3, 0x61, 0x62, 0x63]);
  assert.deepEqual([...prependLen(new Uint8Array(127)).subarray(0, 1)], [127]);
  assert.deepEqual([...prependLen(new Uint8Array(128)).subarray(0, 2)], [0x80, 0x01]);
  assert.deepEqual([...prependLen(new Uint8Array(300)).subarray(0, 2)], [0xac, 0x02]);
  assert.equal(prependLen(new Uint8Array(300)).length, 302);
});

Deno.test("cpace: generator string, its hash and the generator (B.3.1)", async () => {
  const generatorStr = generatorString(CPACE_DSI, PRS, CI, SID, 128);
  assert.equal(generatorStr.length, 170);
  assert.equal(toHex(generatorStr), toHex(hex(GENERATOR_STRING)));
  const hash = new Uint8Array(await crypto.subtle.digest("SHA-512", new Uint8Array(generatorStr)));
  assert.equal(toHex(hash), toHex(hex(HASH_RESULT)));
  const g = await calculateGenerator(PRS, CI, SID);
  assert.equal(toHex(g.toBytes()), G);
});

Deno.test("cpace: the shares of A and B, the secret point K and ISK_IR (B.3.2-B.3.5)", async () => {
  const g = await calculateGenerator(PRS, CI, SID);
  assert.equal(toHex(scalarMult(hex(YA_SCALAR), g)), YA);
  assert.equal(toHex(scalarMult(hex(YB_SCALAR), g)), YB);
  assert.equal(toHex(scalarMultVfy(hex(YA_SCALAR), hex(YB))), K);
  assert.equal(toHex(scalarMultVfy(hex(YB_SCALAR), hex(YA))), K);
  const transcript = new Uint8Array([...lvCat(hex(YA), "ADa"), ...lvCat(hex(YB), "ADb")]);
  assert.equal(toHex(transcript), toHex(hex(TRANSCRIPT_IR)));
  const iskInput = new Uint8Array([...lvCat(`${CPACE_DSI}_ISK`, SID, hex(K)), ...transcript]);
  assert.equal(toHex(iskInput), toHex(hex(ISK_INPUT)));
  const isk = await deriveIsk(SID, hex(K), lvCat(hex(YA), "ADa"), lvCat(hex(YB), "ADb"));
  assert.equal(toHex(isk), toHex(hex(ISK_IR)));

  // The same through the two-step API, from both ends.
  const a = await startCpace({ prs: PRS, ci: CI, sid: SID, ad: "ADa", scalar: hex(YA_SCALAR) });
  const b = await startCpace({ prs: PRS, ci: CI, sid: SID, ad: "ADb", scalar: hex(YB_SCALAR) });
  assert.equal(toHex(a.share), YA);
  assert.equal(toHex(b.share), YB);
  assert.equal(toHex(await finishCpace(a, "initiator", b.share, "ADb")), toHex(hex(ISK_IR)));
  assert.equal(toHex(await finishCpace(b, "responder", a.share, "ADa")), toHex(hex(ISK_IR)));
});

Deno.test("cpace: scalar_mult_vfy with a valid point, an invalid encoding and the identity (B.3.10-11)", () => {
  assert.equal(toHex(scalarMultVfy(hex(S), hex(X))), S_TIMES_X);
  assert.deepEqual(scalarMultVfy(hex(S), hex(Y_I1)), IDENTITY);
  assert.deepEqual(scalarMultVfy(hex(S), IDENTITY), IDENTITY);
});

Deno.test("cpace: an invalid or neutral share from the other side aborts with pake_failed", async () => {
  const a = await startCpace({ prs: "code", ci: CI, sid: SID, ad: "a" });
  for (const share of [hex(Y_I1), IDENTITY]) {
    await assert.rejects(
      finishCpace(a, "initiator", share, "b"),
      (err) => err instanceof PeerError && err.code === "pake_failed",
    );
  }
});

Deno.test("cpace: same code, same key; another code, another key", async () => {
  const run = async (codeA: string, codeB: string) => {
    const a = await startCpace({ prs: codeA, ci: "ci", sid: SID, ad: "initiator" });
    const b = await startCpace({ prs: codeB, ci: "ci", sid: SID, ad: "responder" });
    return [
      toHex(await finishCpace(a, "initiator", b.share, "responder")),
      toHex(await finishCpace(b, "responder", a.share, "initiator")),
    ];
  };
  const [x, y] = await run("7-maple-otter", "7-maple-otter");
  assert.equal(x, y);
  assert.equal(x.length, 128);
  const [u, v] = await run("7-maple-otter", "8-maple-otter");
  assert.notEqual(u, v);
});

Deno.test("cpace: sampled scalars are 32 bytes below 2^252 and not zero", () => {
  for (let i = 0; i < 20; i++) {
    const scalar = sampleScalar();
    assert.equal(scalar.length, 32);
    assert.ok(scalar[31] <= 0x0f);
    assert.ok(scalar.some((byte) => byte !== 0));
  }
});
