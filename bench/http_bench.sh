#!/usr/bin/env bash
# First HTTP benchmark (DESIGN §7 rows "add 1 message over HTTP, durable" and "GET /health"), loopback only.
#   bench/http_bench.sh [SECONDS]      (on PostgreSQL: MEMFUSE_STORE=postgres MEMFUSE_PG_DSN=... bench/http_bench.sh)
# Starts build/memfuse on a fresh temporary data directory, creates a user, an agent and a session, then
# drives it with wrk (Debian package): add-one-message with 8 connections, and GET /api/v1/health with 32
# keep-alive connections; nginx serving a static file of the same size is the health anchor when nginx is
# installed (apt-get install nginx-light). Prints wrk's latency percentiles and requests/s.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
bin=${MEMFUSE_BIN:-build/memfuse}
command -v wrk >/dev/null || { echo "bench: wrk is missing (apt-get install wrk)" >&2; exit 1; }
[ -x "$bin" ] || make -s all

free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
dir=$(mktemp -d)
port=$(free_port)
"$bin" serve --host 127.0.0.1 --port "$port" --data-dir "$dir/data" --log-level warn --embedder hash >"$dir/out" 2>"$dir/err" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; [ -n "${npid:-}" ] && kill "$npid" 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/api/v1/health" >/dev/null && break; sleep 0.05; done
base="http://127.0.0.1:$port/api/v1"
json() { /usr/bin/python3 -c "import sys,json;print(json.load(sys.stdin)$1)"; }
uid=$(curl -sf -XPOST "$base/users" -d '{"name":"bench-user"}' | json '["data"]["user"]["id"]')
aid=$(curl -sf -XPOST "$base/agents" -d '{"name":"bench-agent"}' | json '["data"]["agent"]["id"]')
sid=$(curl -sf -XPOST "$base/sessions" -d "{\"user_id\":\"$uid\",\"agent_id\":\"$aid\"}" | json '["data"]["session"]["id"]')

echo "== machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "== add 1 message over HTTP, durable (fsync'd before 201), 8 connections, ${secs}s  [goal p50 <= 1 ms, p99 <= 5 ms; anchor: seed M0 op ~50 ms]"
MEMFUSE_BENCH_SESSION=$sid wrk -t2 -c8 -d"${secs}s" --latency -s bench/add_message.lua "http://127.0.0.1:$port" | sed -n '/Latency Distribution/,$p'
stored=$(curl -sf "$base/chunks/stats?user_id=$uid" | json '["data"]["total_chunks"]')
echo "messages stored: $stored"

echo "== GET /api/v1/health, 32 keep-alive connections, ${secs}s  [goal >= 30k req/s; anchor: nginx static file]"
wrk -t2 -c32 -d"${secs}s" --latency "$base/health" | sed -n '/Latency Distribution/,$p'

if command -v nginx >/dev/null; then
  nport=$(free_port)
  mkdir -p "$dir/www" "$dir/nginx"; chmod a+rx "$dir" "$dir/www"
  curl -sf "$base/health" > "$dir/www/health.json"
  cat > "$dir/nginx/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 1024; }
http { access_log off; server { listen 127.0.0.1:$nport; root $dir/www; } }
CONF
  nginx -c "$dir/nginx/nginx.conf" -g 'daemon off;' &
  npid=$!
  sleep 0.5
  echo "== anchor: nginx static file ($(wc -c < "$dir/www/health.json") bytes), 32 keep-alive connections, ${secs}s"
  wrk -t2 -c32 -d"${secs}s" --latency "http://127.0.0.1:$nport/health.json" | sed -n '/Latency Distribution/,$p'
fi
