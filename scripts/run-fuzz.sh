#!/usr/bin/env bash
# Bounded libFuzzer run of each target: run-fuzz.sh RUNS BIN...; corpus seeds from tests/fuzz/corpus/<name>.
set -u
runs=$1; shift
pass=0; fail=0
for bin in "$@"; do
  name=$(basename "$bin")
  seeds="tests/fuzz/corpus/$name"
  work=$(mktemp -d)
  [ -d "$seeds" ] && cp -r "$seeds"/. "$work"/ 2>/dev/null
  if "$bin" -runs="$runs" -max_len=4096 -timeout=10 "$work" >"$work.log" 2>&1; then
    pass=$((pass+1)); echo "fuzz $name: ok ($runs runs)"
  else
    fail=$((fail+1)); echo "fuzz $name: FAILED"; tail -40 "$work.log"
  fi
  rm -rf "$work" "$work.log"
done
echo "fuzz: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
