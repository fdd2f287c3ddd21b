#!/usr/bin/env node
// Drain throughput of Graphile Worker, measured like `plan-worker bench
// throughput`: W runners (in-process, C slots each) are started and listening,
// N no-op jobs are inserted in ONE statement, and the clock runs from that
// insert's commit until the last job's completion is committed.
//
//   node graphile.mjs --jobs 20000 --workers 2 --concurrency 500 --mode default|batched [--json]
//
// DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) names the
// server; a throwaway database peer_bench_graphile_<random> is created on it
// and dropped at the end, also on failure or Ctrl-C.

import { EventEmitter } from "node:events";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";

// Graphile formats a "Completed task ..." line per job unless this is set
// (read when the module loads, hence the dynamic import below). plan-worker's
// bench runs with RUST_LOG=warn, which formats nothing per job either.
if (process.env.NO_LOG_SUCCESS === undefined) process.env.NO_LOG_SUCCESS = "1";
const { run, runMigrations, Logger } = await import("graphile-worker");
const pg = (await import("pg")).default;

// Its package.json is not in its "exports"; read it from node_modules beside us.
const GW_VERSION = JSON.parse(
  readFileSync(new URL("./node_modules/graphile-worker/package.json", import.meta.url), "utf8"),
).version;

function usage(msg) {
  if (msg) console.error(`graphile.mjs: ${msg}`);
  console.error(
    "usage: node graphile.mjs [--jobs 20000] [--workers 2] [--concurrency 500] " +
      "[--mode default|batched] [--pool-size 10] [--local-queue-size 500] [--json]",
  );
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({
    options: {
      jobs: { type: "string", default: "20000" },
      workers: { type: "string", default: "2" },
      concurrency: { type: "string", default: "500" },
      mode: { type: "string", default: "default" },
      // Graphile's own default (maxPoolSize 10 per runner). With 2 runners
      // that is 20 connections, the size of plan-worker's bench pool.
      "pool-size": { type: "string", default: "10" },
      "local-queue-size": { type: "string", default: "500" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
    strict: true,
  }).values;
} catch (e) {
  usage(e.message);
}
if (parsed.help) usage();

const int = (name) => {
  const v = Number(parsed[name]);
  if (!Number.isInteger(v) || v < 1) usage(`--${name} must be a positive integer`);
  return v;
};
const jobs = int("jobs");
const workers = int("workers");
const concurrency = int("concurrency");
const poolSize = int("pool-size");
const localQueueSize = int("local-queue-size");
const mode = parsed.mode;
if (mode !== "default" && mode !== "batched") usage("--mode must be default or batched");

const baseUrl = process.env.DATABASE_URL || "postgres://postgres@127.0.0.1:5432/postgres";
const STALL_MS = 60_000; // like plan-worker: give up after 60 s without progress

// Warnings and errors only (Graphile's own warnings, e.g. pool size < concurrency).
const logger = new Logger((scope) => (level, message) => {
  if (level === "error" || level === "warning") {
    console.error(`[graphile ${level}${scope.label ? " " + scope.label : ""}] ${message}`);
  }
});

const workerPreset =
  mode === "batched"
    ? {
        localQueue: { size: localQueueSize },
        completeJobBatchDelay: 0,
        failJobBatchDelay: 0,
      }
    : {};

const dbName = `peer_bench_graphile_${randomBytes(8).toString("hex")}`;
const dbUrl = (() => {
  const u = new URL(baseUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();

const admin = new pg.Client({ connectionString: baseUrl });
let created = false;
let pool = null;
const runners = [];
// One pg.Pool per runner, of Graphile's default size, owned here (not by
// Graphile, whose release ends its own pool without awaiting it) so that every
// connection is closed before the database is dropped.
const runnerPools = [];
let interrupted = null;

const onSignal = (sig) => {
  interrupted = sig;
  wake?.();
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);

// One place to wake the waiting loop: a completion event, a failure, a signal.
let wake = null;
const sleepOrWake = (ms) =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      wake = null;
      resolve();
    }
    wake = done;
  });

function makePool(max) {
  const p = new pg.Pool({ connectionString: dbUrl, max });
  // Without these, a connection error on an idle client crashes the process.
  p.on("error", (e) => console.error(`graphile.mjs: idle client error: ${e.message}`));
  p.on("connect", (client) => client.on("error", () => {}));
  return p;
}

async function main() {
  await admin.connect();
  await admin.query(`create database ${dbName}`); // name generated above, never input
  created = true;

  // The bench's own pool (migrations, the insert, the tail check). Handed to
  // Graphile as pgPool so that it is ours to end (see runnerPools).
  pool = makePool(2);
  await runMigrations({ pgPool: pool, logger });

  const events = new EventEmitter();
  events.setMaxListeners(0);
  let completed = 0;
  let failures = 0;
  let listening = 0;
  let fatal = null;
  events.on("pool:listen:success", () => {
    listening++;
    wake?.();
  });
  events.on("job:complete", ({ error }) => {
    if (error) failures++;
    else completed++;
    if (completed + failures >= jobs) wake?.();
  });
  for (const name of ["pool:fatalError", "worker:fatalError"]) {
    events.on(name, ({ error }) => {
      fatal = error ?? new Error(name);
      wake?.();
    });
  }

  const noop = async () => {};
  for (let w = 0; w < workers; w++) {
    const runnerPool = makePool(poolSize);
    runnerPools.push(runnerPool);
    runners.push(
      await run({
        pgPool: runnerPool,
        concurrency,
        noHandleSignals: true,
        // pollInterval: Graphile's default (2 s); new jobs arrive by LISTEN/NOTIFY.
        taskList: { noop },
        parsedCronItems: [],
        logger,
        events,
        preset: { worker: workerPreset },
      }),
    );
  }
  // Like plan-worker's start_worker: every runner listens before the insert.
  const listenDeadline = performance.now() + 10_000;
  while (listening < workers) {
    if (interrupted) throw new Error(`interrupted by ${interrupted}`);
    if (performance.now() > listenDeadline)
      throw new Error(`only ${listening} of ${workers} runners started listening within 10 s`);
    await sleepOrWake(50);
  }

  // ONE statement; pg autocommits it, so its return is its commit.
  await pool.query(
    `select count(*) from graphile_worker.add_jobs(array(
       select row('noop', '{}'::json, null, null, null, null, null, null)::graphile_worker.job_spec
       from generate_series(1, $1::int)))`,
    [jobs],
  );
  const started = performance.now();

  // Count completions in-process: no polling while the workers drain.
  let lastProgress = started;
  let lastCount = 0;
  while (completed + failures < jobs) {
    if (fatal) throw fatal;
    if (interrupted) throw new Error(`interrupted by ${interrupted}`);
    await sleepOrWake(1000);
    const now = performance.now();
    if (completed + failures !== lastCount) {
      lastCount = completed + failures;
      lastProgress = now;
    } else if (now - lastProgress > STALL_MS) {
      throw new Error(`no progress for 60 s (${completed} of ${jobs} completed)`);
    }
  }
  if (failures) throw new Error(`${failures} of ${jobs} jobs failed`);
  const handlersDone = performance.now();

  // `job:complete` fires when completeJob() is *called*, not when its
  // transaction commits (in both modes; batched mode defers it further). Graphile
  // deletes a completed job, so the last completion is committed when the table
  // is empty. Poll only now, in the tail, so the drain itself is not disturbed.
  const tailDeadline = performance.now() + STALL_MS;
  for (;;) {
    const { rows } = await pool.query(
      "select exists(select 1 from graphile_worker._private_jobs) as left",
    );
    if (!rows[0].left) break;
    if (fatal) throw fatal;
    if (interrupted) throw new Error(`interrupted by ${interrupted}`);
    if (performance.now() > tailDeadline) throw new Error("completions not committed within 60 s");
    await new Promise((r) => setTimeout(r, 1));
  }
  const elapsed = (performance.now() - started) / 1000;

  const result = {
    peer: "graphile-worker",
    version: GW_VERSION,
    node: process.version,
    mode,
    jobs,
    workers,
    concurrency,
    pool_size_per_worker: poolSize,
    ...(mode === "batched"
      ? { local_queue_size: localQueueSize, complete_job_batch_delay_ms: 0, fail_job_batch_delay_ms: 0 }
      : {}),
    seconds: elapsed,
    jobs_per_second: jobs / elapsed,
    // Time from the last handler's completeJob() call to the table being empty.
    commit_tail_seconds: (performance.now() - handlersDone) / 1000,
  };
  if (parsed.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(
      `graphile-worker ${GW_VERSION} (${mode}): ${jobs} jobs drained by ${workers} runners x ` +
        `${concurrency} slots in ${elapsed.toFixed(3)} s = ${(jobs / elapsed).toFixed(0)} jobs/s`,
    );
  }
}

async function cleanup() {
  const steps = [];
  // stop(null): a normal stop, logged by Graphile at debug rather than warn.
  for (const r of runners) steps.push(r.stop(null).catch((e) => e));
  const stopErrors = (await Promise.all(steps)).filter(Boolean);
  for (const p of runnerPools) await p.end().catch(() => {});
  if (pool) await pool.end().catch(() => {});
  if (created) {
    try {
      // Let closing connections go before forcing the rest.
      for (let i = 0; i < 50; i++) {
        const { rows } = await admin.query(
          "select count(*)::int as n from pg_stat_activity where datname = $1",
          [dbName],
        );
        if (rows[0].n === 0) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      await admin.query(`drop database if exists ${dbName} with (force)`);
    } catch (e) {
      console.error(`graphile.mjs: could not drop database ${dbName}: ${e.message}`);
      process.exitCode = 1;
    }
  }
  await admin.end().catch(() => {});
  for (const e of stopErrors) console.error(`graphile.mjs: runner stop: ${e?.message ?? e}`);
}

try {
  await main();
} catch (e) {
  console.error(`graphile.mjs: ${e?.stack ?? e}`);
  process.exitCode = 1;
} finally {
  await cleanup();
}
// Anything Graphile left armed (timers, sockets) must not keep us alive.
setTimeout(() => process.exit(), 100).unref();
