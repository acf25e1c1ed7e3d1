import assert from "node:assert/strict";
import { goodIndex, goodNick, roomMembers, roomsOf, type SoakPlan } from "./plan.ts";
import {
  ackCollisions,
  type AckedMessage,
  checkDeliveries,
  checkHistory,
  expectedFor,
  type ReceivedRecord,
  sentBy,
} from "./verify.ts";

const plan: SoakPlan = { clients: 4, rooms: 3, roomsPerClient: 2 };

Deno.test("plan: each client joins consecutive rooms, and rooms list their members", () => {
  assert.deepEqual(roomsOf(0, plan), ["soak-0", "soak-1"]);
  assert.deepEqual(roomsOf(2, plan), ["soak-2", "soak-0"]);
  const members = roomMembers(plan);
  assert.deepEqual([...members.get("soak-0")!], ["good0", "good2", "good3"]);
  assert.deepEqual([...members.get("soak-1")!], ["good0", "good1", "good3"]);
  assert.equal(goodIndex(goodNick(17)), 17);
  assert.equal(goodIndex("ab0x1"), -1);
});

const acked: AckedMessage[] = [
  { id: 1, from: "good0", room: "soak-0", text: "a" },
  { id: 2, from: "good1", room: "soak-1", text: "b" },
  { id: 3, from: "good2", to: "good0", text: "c" },
  { id: 4, from: "good0", to: "good3", text: "d" },
];

Deno.test("expectedFor: room messages of the client's rooms from others, and its direct messages", () => {
  assert.deepEqual(expectedFor("good0", acked, plan).map((m) => m.id), [2, 3]);
  assert.deepEqual(expectedFor("good2", acked, plan).map((m) => m.id), [1]);
  assert.deepEqual(expectedFor("good3", acked, plan).map((m) => m.id), [1, 2, 4]);
  assert.deepEqual(expectedFor("good1", acked, plan).map((m) => m.id), []);
  assert.deepEqual(sentBy("good0", acked).map((m) => m.id), [1, 4]);
});

Deno.test("checkDeliveries: missing, duplicated, echoed and altered deliveries are told apart", () => {
  const expected = expectedFor("good3", acked, plan); // ids 1, 2 and 4
  const received = new Map<number, ReceivedRecord>([
    [1, { count: 2, from: "good0", text: "a" }],
    [2, { count: 1, from: "good1", text: "b" }],
    [9, { count: 1, from: "good3", text: "mine" }],
  ]);
  const result = checkDeliveries(expected, received, new Set([9]));
  assert.deepEqual(result, {
    expected: 3,
    delivered: 1,
    missing: [4],
    duplicates: [1],
    echoes: [9],
    mismatched: [],
  });
  const altered = checkDeliveries(
    expected,
    new Map([
      [1, { count: 1, from: "good0", text: "A" }],
      [2, { count: 1, from: "good1", text: "b" }],
      [4, { count: 1, from: "good0", text: "d" }],
    ]),
    new Set(),
  );
  assert.equal(altered.delivered, 2);
  assert.deepEqual(altered.mismatched, [1]);
});

Deno.test("checkHistory: every message must be there once, as acknowledged", () => {
  const history = [
    { id: 1, from: "good0", text: "a" },
    { id: 1, from: "good0", text: "a" },
    { id: 3, from: "good2", text: "changed" },
  ];
  assert.deepEqual(checkHistory(acked.slice(0, 3), history), {
    expected: 3,
    missing: [2],
    mismatched: [3],
    duplicates: [1],
  });
});

Deno.test("ackCollisions: one id acknowledged for two different messages", () => {
  assert.deepEqual(ackCollisions(acked), []);
  assert.deepEqual(ackCollisions([...acked, { id: 2, from: "good3", to: "good1", text: "z" }]), [
    2,
  ]);
});
