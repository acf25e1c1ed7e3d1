/**
 * `deno task cluster`: a local demonstration of several servers. Starts PostgreSQL and
 * NATS from the machine's packages (a scratch PostgreSQL in a temporary folder, a
 * `nats-server`, each on a free port of 127.0.0.1) and three `chat serve` nodes on free
 * ports, prints how to connect, and stops everything on Ctrl-C (SIGINT) or SIGTERM,
 * removing the scratch database.
 *
 * It reuses the engines the tests start (`tests/helpers/postgres.ts`, `nats.ts`,
 * `cluster.ts`): one way to run PostgreSQL as a scratch server, not two.
 *
 * Options: `--nodes N` (default 3), `--auth password|none`.
 *
 * @module
 */

import { launcher } from "../cli/serve.ts";
import { CLUSTER_SKIP, startCluster } from "../tests/helpers/cluster_nodes.ts";

function option(name: string, fallback: string): string {
  const at = Deno.args.indexOf(`--${name}`);
  return at >= 0 && at + 1 < Deno.args.length ? Deno.args[at + 1]! : fallback;
}

if (CLUSTER_SKIP !== null) {
  console.error(`deno task cluster: ${CLUSTER_SKIP}`);
  Deno.exit(1);
}
const nodes = Number(option("nodes", "3"));
if (!Number.isInteger(nodes) || nodes < 1 || nodes > 16) {
  console.error("deno task cluster: --nodes takes a number from 1 to 16");
  Deno.exit(2);
}

console.log(`chat cluster: starting PostgreSQL, NATS and ${nodes} nodes...`);
const cluster = await startCluster({
  nodes,
  fsync: true,
  ownPostgres: true,
  nodeFlags: ["--host", "127.0.0.1", "--port", "0", "--auth", option("auth", "password")],
});
let stopping: Promise<void> | null = null;
const stop = (signal: Deno.Signal) => {
  if (stopping !== null) return;
  console.log(`chat cluster: ${signal}: stopping the nodes, NATS and PostgreSQL...`);
  stopping = cluster.close().then(() => {
    console.log("chat cluster: stopped");
    Deno.exit(0);
  });
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => stop(signal));
}

console.log(`  PostgreSQL: ${cluster.databaseUrl} (scratch, in ${cluster.postgres.dir})`);
console.log(`  NATS:       ${cluster.nats.url}`);
for (const node of cluster.nodes) {
  console.log(`  node ${node.index + 1}:     127.0.0.1:${node.port} (pid ${node.child.pid})`);
}
console.log(`  connect with: ${launcher()} connect --host ${cluster.hosts} --nick NAME`);
console.log("  Ctrl-C stops everything.");
console.log(JSON.stringify({
  postgresPort: cluster.postgres.port,
  natsPort: cluster.nats.port,
  nodes: cluster.nodes.map((n) => ({ port: n.port, pid: n.child.pid })),
}));

// A node that dies on its own is reported; the others go on.
for (const node of cluster.nodes) {
  node.child.status.then((status) => {
    if (stopping === null) {
      console.error(`chat cluster: node ${node.index + 1} exited (${status.code}):`);
      console.error(node.tail(20));
    }
  });
}
