import assert from "node:assert/strict";
import postgres from "postgres";
import { POSTGRES_SKIP, startPostgres } from "./helpers/postgres.ts";

Deno.test({
  name: "scratch PostgreSQL: separate databases, stop/start on the same port, close removes it",
  ignore: POSTGRES_SKIP !== null,
  async fn() {
    const pg = (await startPostgres())!;
    try {
      const [a, b] = [await pg.createDatabase(), await pg.createDatabase()];
      assert.notEqual(a, b);
      const sqlA = postgres(a, { max: 1, onnotice: () => {}, connect_timeout: 5 });
      const sqlB = postgres(b, { max: 1, onnotice: () => {}, connect_timeout: 5 });
      try {
        await sqlA`create table t (x int)`;
        await sqlA`insert into t values (1)`;
        const [{ missing }] = await sqlB`select to_regclass('t') is null as missing`;
        assert.equal(missing, true, "a table of one database is not in the other");
        const [{ fsync }] = await sqlA`select current_setting('fsync') as fsync`;
        assert.equal(fsync, "on");

        await pg.stop();
        await assert.rejects(sqlA`select 1`);
        await pg.start();
        const rows = await sqlA`select x from t`;
        assert.deepEqual(rows.map((r) => r.x), [1], "the data survives a restart");
        await pg.restart("immediate");
        assert.deepEqual((await sqlA`select x from t`).map((r) => r.x), [1]);
      } finally {
        await sqlA.end({ timeout: 5 });
        await sqlB.end({ timeout: 5 });
      }
    } finally {
      await pg.close();
    }
    await assert.rejects(Deno.stat(pg.dir), Deno.errors.NotFound);
  },
});
