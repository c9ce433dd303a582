# MemFuse in C — build.
#
#   make            build build/memfuse (release, -O2)
#   make run        install missing system packages, build, serve on the embedded SQLite store
#   make test       install missing packages, build, run every test (C unit, sanitizer build, HTTP suite)
#   make asan       build the AddressSanitizer + UBSan variant into build-asan/
#   make clean
#
# Every src/**/*.c is compiled; src/main.c holds main(). Each tests/unit/test_X.c becomes
# build/tests/test_X linked against every object but main.o, plus cmocka.

# Use every core unless the caller chose (-j given on the command line wins).
ifeq ($(filter -j% --jobs%,$(MAKEFLAGS)),)
MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 2)
endif

BUILD   ?= build
CC      ?= cc
SAN     ?=
OPT     ?= -O2 -g
CFLAGS  := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -fno-strict-aliasing -pthread $(OPT) $(SAN) -Isrc -MMD -MP
CFLAGS  += $(shell pkg-config --cflags libpq 2>/dev/null || echo -I/usr/include/postgresql)
LDFLAGS := -pthread $(SAN)
LDLIBS  := -lmicrohttpd -lcjson -lsqlite3 -lpq -lcurl -lopenblas -lutf8proc -lxxhash -lm

SRCS      := $(shell find src -name '*.c' | sort)
OBJS      := $(SRCS:%.c=$(BUILD)/obj/%.o)
LIB_OBJS  := $(filter-out $(BUILD)/obj/src/main.o,$(OBJS))
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_BINS := $(TEST_SRCS:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all run test test-unit test-api test-asan asan deps clean fuzz fuzz-bins bench
all: $(BUILD)/memfuse

$(BUILD)/memfuse: $(OBJS)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/unit/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS) -lcmocka

deps:
	@bash scripts/bootstrap.sh

run: deps
	$(MAKE) all
	./$(BUILD)/memfuse serve

# The whole suite: release build unit tests, the HTTP suite, then all of it again under ASan+UBSan.
test: deps
	$(MAKE) all
	$(MAKE) test-unit
	$(MAKE) test-api
	$(MAKE) test-asan
	$(MAKE) fuzz
	$(MAKE) test-pg

test-unit: $(TEST_BINS)
	@bash scripts/run-unit-tests.sh $(TEST_BINS)

test-api: $(BUILD)/memfuse
	MEMFUSE_BIN=$(abspath $(BUILD)/memfuse) /usr/bin/python3 -m pytest -q tests/api

asan:
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	        SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all

test-asan: asan
	$(MAKE) BUILD=build-asan OPT="-O1 -g -fno-omit-frame-pointer" \
	        SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" test-unit
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	MEMFUSE_BIN=$(abspath build-asan/memfuse) /usr/bin/python3 -m pytest -q -m "not slow" tests/api

# libFuzzer targets (clang): tests/fuzz/fuzz_X.c -> build-fuzz/fuzz/fuzz_X; a bounded run is part of `make test`.
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_RUNS ?= 20000
fuzz:
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g" SAN="-fsanitize=address,undefined -fsanitize=fuzzer-no-link" fuzz-bins
	@bash scripts/run-fuzz.sh $(FUZZ_RUNS) $(patsubst tests/fuzz/%.c,build-fuzz/fuzz/%,$(FUZZ_SRCS))

fuzz-bins: $(FUZZ_BINS)

# make fuzz-long  the long runs (RELIABILITY.md): each target in turn (FUZZ_TARGETS="fuzz_http ..." picks
#                 some), FUZZ_LONG_RUNS executions (default 10 million) or FUZZ_LONG_SECONDS seconds
#                 (default 2400) each, whichever comes first, under nice -n 19; logs in build-fuzz/long/.
#                 FUZZ_CONTINUE=1 tops a run up from the corpus it left (build-fuzz/long/<name>.corpus).
FUZZ_LONG_RUNS ?= 10000000
FUZZ_LONG_SECONDS ?= 2400
FUZZ_TARGETS ?= $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))
.PHONY: fuzz-long
fuzz-long:
	$(MAKE) BUILD=build-fuzz CC=clang OPT="-O1 -g" SAN="-fsanitize=address,undefined -fsanitize=fuzzer-no-link" fuzz-bins
	@bash scripts/run-fuzz-long.sh $(FUZZ_LONG_RUNS) $(FUZZ_LONG_SECONDS) $(addprefix build-fuzz/fuzz/,$(FUZZ_TARGETS))

$(BUILD)/fuzz/%: tests/fuzz/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -fsanitize=fuzzer -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)

clean:
	rm -rf build build-asan build-fuzz build-vg

-include $(OBJS:.o=.d)

# --- Embedding benchmark (src/embed; see BENCHMARKS.md "## Embeddings") ---------------------------------
# make bench-embed   builds build/bench/embed_bench and runs it from the repository root (needs models/use-lite).
EMBED_BENCH := $(BUILD)/bench/embed_bench
$(EMBED_BENCH): bench/embed_bench.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)
.PHONY: bench-embed
bench-embed: $(EMBED_BENCH)
	./$(EMBED_BENCH)

# --- PostgreSQL backend (src/store/pg; issue 5) ----------------------------------------------------------
# make test-pg   starts a throwaway PostgreSQL 15 cluster (scripts/with-postgres.sh: initdb in a temporary
#                directory, loopback only, a free port), runs the tests/pg/test_pg_*.c unit tests and the
#                black-box suite (tests/api, -m "not slow") with every server on --store postgres, then the
#                crash loops (kill -9 of the server; kill of PostgreSQL itself; ~90 s), then removes the cluster.
PG_TEST_SRCS := $(sort $(wildcard tests/pg/test_pg_*.c))
PG_TEST_BINS := $(PG_TEST_SRCS:tests/pg/%.c=$(BUILD)/tests-pg/%)
$(BUILD)/tests-pg/%: tests/pg/%.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS) -lcmocka
.PHONY: test-pg
test-pg: $(BUILD)/memfuse $(PG_TEST_BINS)
	bash scripts/with-postgres.sh bash -c 'bash scripts/run-unit-tests.sh $(PG_TEST_BINS) && \
	  MEMFUSE_BIN=$(abspath $(BUILD)/memfuse) /usr/bin/python3 -m pytest -q -m "not slow" tests/api && \
	  MEMFUSE_BIN=$(abspath $(BUILD)/memfuse) /usr/bin/python3 -m pytest -q tests/api/test_crash_loop.py \
	    tests/api/test_pg_kill_loop.py'
# make bench-pg  pool acquire/release latency (1, 8, 64 threads; validation on idle vs every checkout)
#                against a throwaway cluster; see BENCHMARKS.md "## PostgreSQL pool".
PG_BENCH := $(BUILD)/bench/pg_pool_bench
$(PG_BENCH): bench/pg_pool_bench.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)
.PHONY: bench-pg
bench-pg: $(PG_BENCH)
	bash scripts/with-postgres.sh ./$(PG_BENCH)

# --- Vector index benchmark (src/search/vindex.c, hnsw.c; see BENCHMARKS.md "## Vector index (exact vs HNSW)") --
# make bench-vindex  builds build/bench/vindex_bench and runs it at 100k vectors of dim 512 (1000 queries):
#                    graph build time, exact scan vs HNSW p50/p99 per query, recall@10, scan bandwidth.
#                    Other sizes: build/bench/vindex_bench N DIM QUERIES.
VINDEX_BENCH := $(BUILD)/bench/vindex_bench
$(VINDEX_BENCH): bench/vindex_bench.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)
.PHONY: bench-vindex
bench-vindex: $(VINDEX_BENCH)
	./$(VINDEX_BENCH) 100000 512 1000

# --- Memory layers benchmark (src/memory, issue 6; see BENCHMARKS.md "## Memory layers (M0/M1/M2)") -------
# make bench-layers  M0/M1/M2 per-flush latency against the fake LLM (50 ms per call, subtracted), LLM calls and
#                    tokens per 100 messages, decide calls saved by duplicate detection.
LAYERS_BENCH := $(BUILD)/bench/layers_bench
$(LAYERS_BENCH): bench/layers_bench.c $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(LIB_OBJS) $(LDFLAGS) $(LDLIBS)
.PHONY: bench-layers
bench-layers: $(LAYERS_BENCH)
	bash bench/layers_bench.sh ./$(LAYERS_BENCH) 50 200

# --- Hardening runs (issue 8; RELIABILITY.md) ------------------------------------------------------------
# make valgrind   the HTTP suite (-m "not slow") with every server under valgrind memcheck (-O1 -g build in
#                 build-vg/); fails on any valgrind error or definitely/indirectly lost bytes.
#                 VG_PYTEST="..." picks other pytest arguments (default: -m "not slow" tests/api).
VG_PYTEST ?= -m "not slow" tests/api
.PHONY: valgrind
valgrind:
	$(MAKE) BUILD=build-vg OPT="-O1 -g" all
	bash scripts/valgrind-suite.sh build-vg/memfuse $(VG_PYTEST)

# --- DESIGN §7 benchmarks (issue 7; see BENCHMARKS.md "DESIGN.md §7 targets") ---------------------------
# make benchmarks          runs bench/benchmarks.py: `memfuse bench` (health with nginx as the anchor, durable adds,
#                          the chat workload, queries at 1k-30k memories per user), build/bench/embed_bench and the
#                          recall tool; writes bench/results/ (JSON, the query-latency data and its gnuplot PNG) and
#                          regenerates the §7 section of BENCHMARKS.md, leaving the other sections alone. About
#                          seven minutes on 2 shared cores. FULL=1 adds the 100k-memories point (several more);
#                          BENCH_SECONDS=S sets each scenario's duration (default 4).
.PHONY: benchmarks
benchmarks: deps
	$(MAKE) all $(EMBED_BENCH)
	/usr/bin/python3 bench/benchmarks.py --bin $(BUILD)/memfuse --embed-bench $(EMBED_BENCH) $(if $(FULL),--full)

# make soak       one million mixed requests (bench/soak.lua through wrk: adds balanced by deletes, updates,
#                 lists, queries, reads, gets, health) against build/memfuse on loopback, sampling RSS, fds
#                 and threads every 2 s; prints a JSON report (SOAK_OUT=file to keep it) and fails on any
#                 non-2xx answer, fd/thread growth or an unclean exit. ~3 min here; SOAK_REQUESTS=N for another size.
SOAK_REQUESTS ?= 1000000
SOAK_OUT ?=
.PHONY: soak
soak: $(BUILD)/memfuse
	/usr/bin/python3 bench/soak.py --bin $(abspath $(BUILD)/memfuse) --requests $(SOAK_REQUESTS) \
	  $(if $(SOAK_OUT),--out $(SOAK_OUT))
