import assert from "node:assert/strict";
import { join } from "node:path";
import { onFreePort, PortReservation, PORTS_DIR, reservePorts, tryReservePorts } from "./ports.ts";

const PORTS_MODULE = new URL("./ports.ts", import.meta.url).href;

/** How long a test waits for another process or for enough contention. */
const DEADLINE_MS = 60_000;

interface Counts {
  /** Reservations obtained. */
  held: number;
  /** Reservations refused (the port was held by the other side). */
  refused: number;
  /** Times a port was found in use by the other side while reserved here. */
  conflicts: string[];
}

/**
 * Reserves `ports` in turn, one at a time, until `done`; while it holds one, it marks it
 * in `witnessDir` (a file created only if absent) and listens on it: a port held by two
 * sides at once shows as a conflict on one of them. Self-contained: a second process runs
 * its source.
 */
async function contend(
  tryReserve: (port: number) => { release(): void } | null,
  ports: number[],
  witnessDir: string,
  done: (counts: Counts) => boolean,
): Promise<Counts> {
  const counts: Counts = { held: 0, refused: 0, conflicts: [] };
  for (let i = 0; !done(counts); i++) {
    const port = ports[i % ports.length];
    const reservation = tryReserve(port);
    if (reservation === null) {
      counts.refused++;
      await new Promise((resolve) => setTimeout(resolve, 0));
      continue;
    }
    counts.held++;
    const witness = `${witnessDir}/${port}`;
    let marked = false;
    try {
      Deno.openSync(witness, { createNew: true, write: true }).close();
      marked = true;
    } catch (err) {
      counts.conflicts.push(`${port} marked by the other side: ${err}`);
    }
    let listener: Deno.Listener | undefined;
    try {
      listener = Deno.listen({ hostname: "127.0.0.1", port });
    } catch (err) {
      counts.conflicts.push(`${port} listened on by the other side: ${err}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
    listener?.close();
    if (marked) Deno.removeSync(witness);
    reservation.release();
  }
  return counts;
}

/** Runs `code` (a module) in `deno eval`, stdin and stdout piped. */
function denoEval(code: string): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
}

/** The lines a child prints, one at a time, each within {@linkcode DEADLINE_MS}. */
function lines(child: Deno.ChildProcess): () => Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  return async () => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no line from the child in time: ${JSON.stringify(text)}`)),
        DEADLINE_MS,
      );
    });
    try {
      while (!text.includes("\n")) {
        const { value, done } = await Promise.race([reader.read(), late]);
        if (done) throw new Error(`the child ended before a full line: ${JSON.stringify(text)}`);
        text += value;
      }
    } finally {
      clearTimeout(timer);
    }
    const line = text.slice(0, text.indexOf("\n"));
    text = text.slice(line.length + 1);
    return line;
  };
}

/** Some ports that were free a moment ago (not reserved). */
function somePorts(count: number): number[] {
  const reservation = reservePorts(count);
  reservation.release();
  return reservation.ports;
}

function claimFile(port: number): string {
  return join(PORTS_DIR, String(port));
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

Deno.test("ports: two processes reserving the same ports never hold one at once", async () => {
  const ports = somePorts(4);
  const witnessDir = await Deno.makeTempDir({ prefix: "chat-ports-witness-" });
  const child = denoEval(`
    import { tryReservePorts } from ${JSON.stringify(PORTS_MODULE)};
    let stop = false;
    (async () => {
      for await (const _ of Deno.stdin.readable) { /* until the parent closes it */ }
      stop = true;
    })();
    console.log("ready");
    let first = true;
    const counts = await (${contend.toString()})(
      (port) => {
        const reservation = tryReservePorts(port);
        if (reservation !== null && first) console.log("held one");
        if (reservation !== null) first = false;
        return reservation;
      },
      ${JSON.stringify(ports)},
      ${JSON.stringify(witnessDir)},
      () => stop,
    );
    console.log(JSON.stringify(counts));
  `);
  const next = lines(child);
  const stdin = child.stdin.getWriter();
  try {
    assert.equal(await next(), "ready");
    // Until this side has held ports and been refused many times (mostly by the other side
    // holding them).
    const deadline = Date.now() + DEADLINE_MS;
    const mine = await contend(
      tryReservePorts,
      ports,
      witnessDir,
      (c) => (c.held >= 100 && c.refused >= 100) || Date.now() > deadline,
    );
    // The other side has held ports too (it may start late on a loaded machine).
    assert.equal(await next(), "held one");
    await stdin.close();
    const theirs = JSON.parse(await next()) as Counts;
    assert.deepEqual(mine.conflicts, [], "conflicts seen here");
    assert.deepEqual(theirs.conflicts, [], "conflicts seen by the other process");
    assert.ok(
      mine.held >= 100 && mine.refused >= 100,
      `not enough contention: ${JSON.stringify(mine)}`,
    );
    assert.equal((await child.status).code, 0);
  } finally {
    await stdin.close().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await Deno.remove(witnessDir, { recursive: true });
  }
});

Deno.test("ports: a claim left by a killed process is taken over", async () => {
  const [port] = somePorts(1);
  const child = denoEval(`
    import { tryReservePorts } from ${JSON.stringify(PORTS_MODULE)};
    console.log(tryReservePorts(${port}) === null ? "refused" : "held");
    for await (const _ of Deno.stdin.readable) { /* held until killed */ }
  `);
  const next = lines(child);
  try {
    assert.equal(await next(), "held");
    assert.equal(Deno.readTextFileSync(claimFile(port)), `${child.pid}\n`, "the owner's PID");
    assert.equal(tryReservePorts(port), null, "held by a live process");
  } finally {
    // SIGKILL: no exit handler runs, the claim file stays behind.
    child.kill("SIGKILL");
    await child.status;
  }
  assert.ok(exists(claimFile(port)), "the dead process's claim is left");
  const taken = tryReservePorts(port);
  assert.ok(taken !== null, "the stale claim is taken over");
  try {
    assert.equal(Deno.readTextFileSync(claimFile(port)), `${Deno.pid}\n`);
  } finally {
    taken.release();
  }
});

Deno.test("ports: a process's reservations are given back when it exits", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { reservePorts } from ${JSON.stringify(PORTS_MODULE)};
       console.log(reservePorts(2).port);`,
    ],
    stderr: "inherit",
  }).output();
  assert.ok(out.success);
  const port = Number(new TextDecoder().decode(out.stdout).trim());
  assert.ok(!exists(claimFile(port)) && !exists(claimFile(port + 1)), "claims removed at exit");
});

Deno.test("ports: a released port can be reserved again, not before", () => {
  const first = reservePorts();
  assert.ok(first instanceof PortReservation);
  assert.equal(tryReservePorts(first.port), null, "held by this process");
  first.release();
  assert.ok(!first.held);
  assert.ok(!exists(claimFile(first.port)), "its claim file is removed");
  first.release(); // again: no-op
  const again = tryReservePorts(first.port);
  assert.ok(again !== null, "reserved again once released");
  again.release();
});

Deno.test("ports: two consecutive ports are reserved together", () => {
  const pair = reservePorts(2);
  try {
    assert.deepEqual(pair.ports, [pair.port, pair.port + 1]);
    assert.equal(tryReservePorts(pair.port + 1), null);
    assert.equal(tryReservePorts(pair.port - 1, 2), null, "overlapping ranges");
  } finally {
    pair.release();
  }
  // A range of which one port is held is refused whole: its other port stays free.
  const held = reservePorts();
  try {
    assert.equal(tryReservePorts(held.port - 1, 2), null);
    const below = tryReservePorts(held.port - 1);
    assert.ok(below !== null, "the other port of the refused range was not kept");
    below.release();
  } finally {
    held.release();
  }
});

Deno.test("ports: a port something listens on is not reserved", () => {
  // Not through a reservation: a listener of another program, which knows no claims.
  const [port] = somePorts(1);
  const listener = Deno.listen({ hostname: "127.0.0.1", port });
  try {
    assert.equal(tryReservePorts(port), null);
    assert.ok(!exists(claimFile(port)), "no claim kept for it");
  } finally {
    listener.close();
  }
  const free = tryReservePorts(port);
  assert.ok(free !== null);
  free.release();
});

Deno.test("ports: onFreePort releases a failed attempt's port, keeps the working one", async () => {
  const tried: number[] = [];
  let kept: PortReservation | undefined;
  const value = await onFreePort((port, reservation) => {
    tried.push(port);
    if (tried.length === 1) return Promise.reject(new Error("taken"));
    kept = reservation;
    return Promise.resolve(port);
  });
  try {
    assert.equal(tried.length, 2);
    assert.equal(value, tried[1]);
    assert.ok(kept?.held && kept.port === value);
    assert.equal(tryReservePorts(value), null, "the working port stays reserved");
    const failed = tryReservePorts(tried[0]);
    assert.ok(failed !== null, "the failed attempt's port was given back");
    failed.release();
  } finally {
    kept?.release();
  }
});
