#!/usr/bin/env bash
# valgrind-suite.sh BIN [PYTEST ARGS...] — the black-box HTTP suite with every server under valgrind.
#
# Every `memfuse serve` the suite starts runs as
#   valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 ...
# (through conftest's MEMFUSE_TEST_WRAPPER), each process writing its own log into $VG_LOG_DIR
# (default: a fresh temporary directory, kept when something is found). Afterwards every log is read:
#   - a log whose ERROR SUMMARY counts errors, or that reports definitely/indirectly lost bytes, fails the run;
#   - a log without an ERROR SUMMARY belongs to a server killed with SIGKILL (the kill -9 tests): counted
#     and listed, not judged (valgrind writes nothing at a SIGKILL).
# Default pytest arguments: -m "not slow" tests/api. A server that ends with valgrind's exit code 99
# also fails its own test (conftest wants exit 0 on SIGTERM).
# Exit 0 only when pytest passed and no log has an error or a definite/indirect leak.
set -u
[ $# -ge 1 ] || { echo "usage: $0 MEMFUSE_BIN [PYTEST ARGS...]" >&2; exit 2; }
BIN=$(readlink -f "$1"); shift
command -v valgrind >/dev/null || { echo "valgrind-suite: valgrind is not installed (apt-get install valgrind)" >&2; exit 2; }
[ -x "$BIN" ] || { echo "valgrind-suite: $BIN is not executable" >&2; exit 2; }
cd "$(dirname "$0")/.."

LOGS=${VG_LOG_DIR:-$(mktemp -d /tmp/memfuse-valgrind.XXXXXX)}
mkdir -p "$LOGS"
SUPP=scripts/valgrind.supp
export MEMFUSE_TEST_WRAPPER="valgrind --leak-check=full --show-leak-kinds=definite,indirect \
--errors-for-leak-kinds=definite,indirect --error-exitcode=99 --num-callers=30 --suppressions=$PWD/$SUPP \
--log-file=$LOGS/memfuse.%p.log"
# start-up maps the model and pre-embeds nothing, but valgrind is ~20-50x slower; the leak check at exit
# takes seconds; every HTTP call of the suite already allows 20 s
export MEMFUSE_TEST_START_TIMEOUT=${MEMFUSE_TEST_START_TIMEOUT:-120}
export MEMFUSE_TEST_STOP_TIMEOUT=${MEMFUSE_TEST_STOP_TIMEOUT:-180}
export MEMFUSE_BIN="$BIN"

[ $# -gt 0 ] || set -- -m "not slow" tests/api
start=$(date +%s)
/usr/bin/python3 -m pytest -q "$@"
prc=$?
took=$(( $(date +%s) - start ))

nlogs=0; bad=0; killed=0; clean=0
for f in "$LOGS"/memfuse.*.log; do
  [ -e "$f" ] || continue
  nlogs=$((nlogs+1))
  if ! grep -q "ERROR SUMMARY" "$f"; then
    killed=$((killed+1))
    # killed before its summary: still judge the errors it reported while it ran
    if grep -Eq "Invalid (read|write|free)|uninitialised|Syscall param|Mismatched free|Source and destination overlap" "$f"; then
      bad=$((bad+1)); echo "valgrind: $f: errors before it was killed"; sed -n 1,120p "$f"
    fi
    continue
  fi
  errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9,]*\) errors.*/\1/p' "$f" | tr -d , | tail -1)
  def=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tr -d , | tail -1)
  ind=$(sed -n 's/.*indirectly lost: \([0-9,]*\) bytes.*/\1/p' "$f" | tr -d , | tail -1)
  if [ "${errs:-0}" != 0 ] || [ "${def:-0}" != 0 ] || [ "${ind:-0}" != 0 ]; then
    bad=$((bad+1)); echo "valgrind: $f: errors=${errs:-0} definitely_lost=${def:-0} indirectly_lost=${ind:-0}"
    sed -n 1,120p "$f"
  else
    clean=$((clean+1))
  fi
done
echo "valgrind: $nlogs server processes, $clean clean, $bad with errors or leaks, $killed without a summary; pytest rc=$prc; ${took}s; logs in $LOGS"
if [ "$prc" -eq 0 ] && [ "$bad" -eq 0 ]; then
  [ -n "${VG_LOG_DIR:-}" ] || rm -rf "$LOGS"
  exit 0
fi
exit 1
