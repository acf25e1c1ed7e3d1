import assert from "node:assert/strict";
import {
  formatThreadCpu,
  parseTaskStat,
  readThreadTicks,
  TaskStatError,
  threadCpuShares,
  type ThreadTicks,
} from "./thread_cpu.ts";

/** A stat line as Linux writes it: utime and stime are the 14th and 15th fields. */
function statLine(tid: number, name: string, utime: number, stime: number): string {
  return `${tid} (${name}) S 1 ${tid} ${tid} 0 -1 4194560 2790 0 0 0 ${utime} ${stime} 0 0 20 0 4 0`;
}

Deno.test("parseTaskStat reads the thread id, its name and its user and system seconds", () => {
  assert.deepEqual(parseTaskStat(statLine(4242, "V8 DefaultWorke", 41, 6)), {
    tid: 4242,
    name: "V8 DefaultWorke",
    user: 0.41,
    system: 0.06,
  });
  // A name may hold parentheses and spaces: the last ")" ends it.
  assert.deepEqual(parseTaskStat(statLine(7, "a) (b", 100, 250)).name, "a) (b");
});

Deno.test("parseTaskStat refuses what is not a stat line", () => {
  for (const line of ["", "garbage", "12 (deno) S 1", "x (deno) " + "0 ".repeat(20)]) {
    assert.throws(
      () => parseTaskStat(line),
      (error) => error instanceof TaskStatError && error.code === "bad_task_stat",
    );
  }
});

Deno.test("threadCpuShares groups threads by name, the process's own as main, busiest first", () => {
  const t = (tid: number, name: string, user: number, system: number): ThreadTicks => ({
    tid,
    name,
    user,
    system,
  });
  const before = [
    t(10, "deno", 1, 1),
    t(11, "tokio-runtime-w", 0.1, 0.1),
    t(12, "V8 DefaultWorke", 0.5, 0),
    t(13, "tokio-runtime-w", 0, 0),
    t(14, "gone", 1, 1),
  ];
  const after = [
    t(10, "deno", 1.8, 1.9), // 1.7 s in 2 s
    t(11, "tokio-runtime-w", 0.1, 0.2), // 0.1 s, all in the kernel
    t(12, "V8 DefaultWorke", 0.5, 0), // idle: left out
    t(13, "tokio-runtime-w", 0, 0.04),
    t(15, "tokio-runtime-w", 0.02, 0.04), // started in between: counted from zero
  ];
  const shares = threadCpuShares(10, before, after, 2);
  assert.deepEqual(shares.map((s) => [s.name, s.threads]), [["main", 1], ["tokio-runtime-w", 3]]);
  assert.ok(Math.abs(shares[0].percent - 85) < 1e-9);
  assert.ok(Math.abs(shares[0].systemPercent - 45) < 1e-9);
  assert.ok(Math.abs(shares[1].percent - 10) < 1e-9);
  assert.ok(Math.abs(shares[1].systemPercent - 9) < 1e-9);
  assert.deepEqual(
    formatThreadCpu(shares),
    "main 85.0% (sys 45.0), tokio-runtime-w (3) 10.0% (sys 9.0)",
  );
  assert.deepEqual(formatThreadCpu([]), "no thread ran");
  assert.throws(() => threadCpuShares(10, before, after, 0), RangeError);
});

Deno.test({
  name: "readThreadTicks reads a busy deno process's threads: its JavaScript's time is main's",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // `deno eval` runs its JavaScript on the process's own thread (as `deno run` does the
    // server; `deno test` runs tests on another): spinning there grows main's time.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "console.log('up'); const end = Date.now() + 20_000; while (Date.now() < end);",
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const reader = child.stdout.getReader();
      await reader.read(); // "up": spinning from here on
      reader.releaseLock();
      const before = readThreadTicks(child.pid);
      assert.ok(before.some((t) => t.tid === child.pid), "the process's own thread is listed");
      assert.ok(before.length > 1, "Deno runs more threads than one");
      const started = performance.now();
      let shares = threadCpuShares(child.pid, before, before, 1);
      // Until main's ticks grow (10 ms a tick); bounded by a deadline.
      for (const deadline = Date.now() + 10_000; Date.now() < deadline;) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        const seconds = (performance.now() - started) / 1000;
        shares = threadCpuShares(child.pid, before, readThreadTicks(child.pid), seconds);
        if (shares.some((s) => s.name === "main")) break;
      }
      assert.equal(shares[0]?.name, "main");
      assert.ok(shares[0].percent > 0);
    } finally {
      child.kill();
      await child.status;
      await child.stdout.cancel().catch(() => {});
    }
    assert.deepEqual(readThreadTicks(child.pid), [], "a process gone has no threads");
  },
});
