#!/bin/bash
# layers_bench.sh BIN [LATENCY_MS] [FLUSHES] — runs bench/layers_bench.c's binary against the test suite's fake
# OpenAI server (tests/fakes/fake_openai.py) on loopback, configured to answer every chat call after LATENCY_MS
# (default 50). The fake is stopped on exit.
set -euo pipefail
bin=$1
latency=${2:-50}
flushes=${3:-200}
out=$(mktemp)
/usr/bin/python3 tests/fakes/fake_openai.py --port 0 >"$out" 2>/dev/null &
fake=$!
trap 'kill $fake 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do
  grep -q '^PORT ' "$out" && break
  sleep 0.05
done
port=$(awk '/^PORT /{print $2}' "$out")
[ -n "$port" ] || { echo "layers_bench.sh: the fake LLM did not start" >&2; exit 1; }
curl -sf -X POST "http://127.0.0.1:$port/control/chat" -H 'Content-Type: application/json' \
     -d "{\"latency_ms\": $latency}" >/dev/null
"$bin" --llm-url "http://127.0.0.1:$port" --latency-ms "$latency" --flushes "$flushes"
