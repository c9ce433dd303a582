#!/usr/bin/env bash
# Long libFuzzer runs, one target after another (RELIABILITY.md "Longer runs"):
#   run-fuzz-long.sh RUNS SECONDS BIN...
# Each target runs until RUNS executions or SECONDS seconds, whichever comes first, at the lowest CPU
# priority (nice -n 19), single process, on a fresh copy of its seeds (tests/fuzz/corpus/<name>); what it
# adds to the corpus stays in build-fuzz/long/<name>.corpus (not committed). Log: build-fuzz/long/<name>.log.
# A crash, leak, timeout or sanitizer report leaves its input as build-fuzz/long/<name>-crash-* etc.: fix
# it, then add the input to tests/fuzz/corpus/<name>/ so the bounded run of `make fuzz` replays it.
# FUZZ_CONTINUE=1: go on from the corpus the last run left in build-fuzz/long/<name>.corpus instead (a run
# cut short by its time bound can be topped up; log build-fuzz/long/<name>.cont.log).
# Prints one summary line per target (executions, seconds, executions/s, coverage, features, corpus, result).
set -u
runs=$1; secs=$2; shift 2
out=build-fuzz/long
mkdir -p "$out"
pass=0; fail=0
for bin in "$@"; do
  name=$(basename "$bin")
  work="$out/$name.corpus"
  log="$out/$name.log"
  if [ "${FUZZ_CONTINUE:-0}" = 1 ] && [ -d "$work" ]; then
    log="$out/$name.cont.log"
  else
    rm -rf "$work"; mkdir -p "$work"
    [ -d "tests/fuzz/corpus/$name" ] && cp -r "tests/fuzz/corpus/$name"/. "$work"/
  fi
  t0=$(date +%s)
  nice -n 19 "$bin" -runs="$runs" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
    -print_final_stats=1 -artifact_prefix="$out/$name-" "$work" >"$log" 2>&1
  rc=$?
  t1=$(date +%s)
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
  last=$(grep -E '^#[0-9]+' "$log" | grep 'cov:' | tail -1)
  cov=$(echo "$last" | grep -o 'cov: [0-9]*' | grep -o '[0-9]*')
  ft=$(echo "$last" | grep -o 'ft: [0-9]*' | grep -o '[0-9]*')
  corp=$(echo "$last" | grep -o 'corp: [0-9]*/[0-9a-zA-Z]*' | sed 's/corp: //')
  el=$((t1 - t0)); [ "$el" -gt 0 ] || el=1
  if [ "$rc" -eq 0 ]; then res=ok; pass=$((pass+1)); else res="FAILED (rc=$rc; see $log)"; fail=$((fail+1)); fi
  echo "fuzz-long $name: ${execs:-?} executions in ${el} s ($(( ${execs:-0} / el ))/s), cov ${cov:-?}, ft ${ft:-?}, corpus ${corp:-?}: $res"
done
echo "fuzz-long: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
