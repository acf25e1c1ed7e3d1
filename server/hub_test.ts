import assert from "node:assert/strict";
import type { BatchFilter, Publication } from "./broker.ts";
import { type OnlineAccount, Session, type SessionPort } from "./hub.ts";
import { HeldWindow } from "./held_delivery.ts";

const port: SessionPort = { remote: "127.0.0.1:1", ip: "127.0.0.1", send: () => true, end() {} };

function filterOf(publications: Publication[]): BatchFilter {
  const from = new Set<string>();
  const exceptSessions = new Set<string>();
  const except = new Set<string>();
  for (const p of publications) {
    if (p.from !== undefined) from.add(p.from);
    if (p.exceptSession !== undefined) exceptSessions.add(p.exceptSession);
    for (const key of p.except ?? []) except.add(key);
  }
  return { from, exceptSessions, except };
}

Deno.test("Session.acceptsAll: true only when accepts takes every publication of the batch", () => {
  const account: OnlineAccount = {
    key: "ann",
    nick: "Ann",
    sessions: [],
    blocks: new Set(["eve"]),
    rooms: new Set(["a"]),
    hidden: false,
    away: null,
  };
  const session = new Session(account, port, "n:s1");
  const msg = (from: string) => ({
    event: { type: "msg" as const, id: 1, ts: 1, room: "a", from, text: "hi" },
    from,
  });
  const batches: Publication[][] = [
    [msg("bob"), msg("cat")],
    [msg("bob"), msg("eve")],
    [msg("bob"), { ...msg("cat"), exceptSession: "n:s1" }],
    [msg("bob"), { ...msg("cat"), exceptSession: "n:s2" }],
    [msg("bob"), { ...msg("cat"), except: new Set(["ann"]) }],
    [msg("bob"), { ...msg("cat"), except: new Set(["dan"]) }],
  ];
  for (const batch of batches) {
    const each = batch.every((p) => session.accepts(p));
    assert.equal(session.acceptsAll(filterOf(batch)), each, JSON.stringify(batch));
  }
  // A held window open: each publication is asked about (a direct message may be held).
  session.held = new HeldWindow("ann");
  assert.equal(session.acceptsAll(filterOf(batches[0])), false);
  session.held = null;
  session.ended = true;
  assert.equal(session.acceptsAll(filterOf(batches[0])), false);
});

Deno.test("Session.send: a port that reads events gets the event and no frame; another its frame", () => {
  const account: OnlineAccount = {
    key: "ann",
    nick: "Ann",
    sessions: [],
    blocks: new Set(),
    rooms: new Set(),
    hidden: false,
    away: null,
  };
  const event = { type: "notice" as const, code: "info" as const, text: "hi" };
  const sent: { bytes: number; events: unknown[] }[] = [];
  const recording = (readsEvents: boolean): SessionPort => ({
    ...port,
    readsEvents,
    send(frames, count = 1, publications, first = 0) {
      sent.push({
        bytes: frames.length,
        events: publications?.slice(first, first + count).map((p) => p.event) ?? [],
      });
      return true;
    },
  });
  assert.ok(new Session(account, recording(true), "n:s1").send(event));
  assert.deepEqual(sent, [{ bytes: 0, events: [event] }]);
  assert.ok(new Session(account, recording(false), "n:s2").send(event));
  assert.ok(sent[1].bytes > 0, "a frame for a port that reads frames");
});
