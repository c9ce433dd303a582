/* bench — `memfuse bench`, the load generator (DESIGN §7: figures from `memfuse bench`).
 *
 *   memfuse bench [--url http://127.0.0.1:PORT] [--scenario NAME] [--connections N] [--duration S]
 *                 [--memories N] [--json] [--api-key KEY] [--server-arg FLAG ...] [--timeout-ms MS]
 *
 * Without --url it starts `memfuse serve` itself (this same binary, /proc/self/exe) on 127.0.0.1 with a
 * free port (--port 0, read back from the server's "listening" line) and a temporary data directory,
 * and stops it (SIGTERM) and removes the directory afterwards; it then also reports the server's cold
 * start (exec to listening) and its idle RSS. Scenarios: add, list, query-keyword, query-vector,
 * query-hybrid, chat (the Python SDK's turn: query, add the turn, list the history), health, all (or a
 * comma-separated list, run in its order). Each runs N keep-alive connections (one thread each, closed
 * loop) for a bounded duration and prints requests, errors, throughput and p50/p90/p99/p99.9 latency;
 * --json prints one JSON document instead. After the scenarios it reads the server's own operation
 * percentiles from GET /api/v1/admin/stats. Exit status 0 when every scenario completed requests.
 *
 * Owns: the server process it started and its temporary directory, for the duration of the call. */
#ifndef MEMFUSE_BENCH_H
#define MEMFUSE_BENCH_H

int bench_main(int argc, char **argv);

#endif
