# mockupstream: build, test and benchmark.
#
#   make          build build/mockupstream (release, jemalloc)
#   make asan     build build/asan/mockupstream (ASan + UBSan, system malloc)
#   make plain    build build/plain/mockupstream (no jemalloc, no sanitizers: for valgrind)
#   make deps     install missing Debian packages for build, run, test and bench (as root); lists in deps/
#   make deps-run install only what building and running need
#   make run      deps-run + build + run with defaults
#   make test     deps + both builds + unit tests + integration suite on both builds
#   make fuzz     run every fuzz harness for FUZZ_SECONDS each
#   make image-test  build docker/Dockerfile with podman on a local bookworm-slim base and run it (root)
#   make bench    side-by-side benchmark against nginx echo_sleep (tools/bench)

VERSION   := 0.2.0
CC        ?= cc
BUILD     := build
ASAN_DIR  := $(BUILD)/asan
FUZZ_DIR  := $(BUILD)/fuzz
FUZZ_SECONDS ?= 60

# h2o's headers default to libuv; without this flag struct layouts disagree with libh2o-evloop.
H2O_FLAGS := -DH2O_USE_LIBUV=0
WARN      := -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers
CFLAGS_COMMON := -std=gnu11 $(WARN) $(H2O_FLAGS) -D_GNU_SOURCE -DMOCKUPSTREAM_VERSION='"$(VERSION)"' -Iserver
CFLAGS    ?= -O2 -g
LIBS_COMMON := -lh2o-evloop -lev -lssl -lcrypto -lm -lpthread
LIBS      := $(LIBS_COMMON) -ljemalloc
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined

SERVER_SRC := $(wildcard server/*.c)
SERVER_HDR := $(wildcard server/*.h)
# Everything but main.c, linked into unit tests and fuzz harnesses.
LIB_SRC    := $(filter-out server/main.c,$(SERVER_SRC))
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
UNIT_BINS  := $(patsubst tests/unit/%.c,$(BUILD)/unit/%,$(UNIT_SRC))
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(patsubst tests/fuzz/%.c,$(FUZZ_DIR)/%,$(FUZZ_SRC))

# Debian's interpreter, so python3-yaml from deps/debian-test.txt is importable.
PYTHON ?= /usr/bin/python3
TOOLS_SRC  := $(wildcard tools/*.c)
TOOLS_BINS := $(patsubst tools/%.c,$(BUILD)/tools/%,$(TOOLS_SRC))

.PHONY: all asan plain deps deps-build deps-run run test unit integration fuzz fuzz-quick bench bench-delay clean image-test

all: $(BUILD)/mockupstream $(TOOLS_BINS)

# Small C helpers users run beside the server (load clients); no h2o needed.
$(BUILD)/tools/%: tools/%.c Makefile
	@mkdir -p $(BUILD)/tools
	$(CC) -std=gnu11 $(WARN) -D_GNU_SOURCE -O2 -g -o $@ $<

$(BUILD)/mockupstream: $(SERVER_SRC) $(SERVER_HDR) Makefile
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -o $@ $(SERVER_SRC) $(LIBS)

asan: $(ASAN_DIR)/mockupstream

# For valgrind: no sanitizers and the system allocator (valgrind cannot follow jemalloc's heap).
plain: $(BUILD)/plain/mockupstream

$(BUILD)/plain/mockupstream: $(SERVER_SRC) $(SERVER_HDR) Makefile
	@mkdir -p $(BUILD)/plain
	$(CC) $(CFLAGS_COMMON) -O1 -g -o $@ $(SERVER_SRC) $(LIBS_COMMON)

$(ASAN_DIR)/mockupstream: $(SERVER_SRC) $(SERVER_HDR) Makefile
	@mkdir -p $(ASAN_DIR)
	$(CC) $(CFLAGS_COMMON) $(ASAN_FLAGS) -DMOCKUPSTREAM_SANITIZED=1 -o $@ $(SERVER_SRC) $(LIBS_COMMON)

# Unit tests link the server's objects compiled once (ASan + UBSan), not every source per test.
UNIT_OBJS := $(patsubst server/%.c,$(BUILD)/unit/obj/%.o,$(LIB_SRC))
.SECONDARY: $(UNIT_OBJS)

$(BUILD)/unit/obj/%.o: server/%.c $(SERVER_HDR) Makefile
	@mkdir -p $(BUILD)/unit/obj
	$(CC) $(CFLAGS_COMMON) $(ASAN_FLAGS) -c -o $@ $<

$(BUILD)/unit/%: tests/unit/%.c $(UNIT_OBJS) tests/unit/unit.h Makefile
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_COMMON) $(ASAN_FLAGS) -Itests/unit -o $@ $< $(UNIT_OBJS) $(LIBS_COMMON)

# libFuzzer needs clang; harnesses link the same server objects (minus main.c).
$(FUZZ_DIR)/%: tests/fuzz/%.c $(LIB_SRC) $(SERVER_HDR) Makefile
	@mkdir -p $(FUZZ_DIR)
	clang $(CFLAGS_COMMON) -Wno-unused-command-line-argument -O1 -g -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRC) $(LIBS_COMMON)

# Installs only what is missing; needs root (CI and the README's commands run as root).
deps:
	@sh tools/install-debian-packages deps/debian-build.txt deps/debian-runtime.txt deps/debian-test.txt

deps-build:
	@sh tools/install-debian-packages deps/debian-build.txt

# `make run` on a fresh machine: the compiler and libraries, not the test and benchmark tools.
deps-run:
	@sh tools/install-debian-packages deps/debian-build.txt deps/debian-runtime.txt

run: deps-run all
	./$(BUILD)/mockupstream $(ARGS)

unit: $(UNIT_BINS)
	@$(PYTHON) tests/run_unit.py $(UNIT_BINS)

integration: all asan
	$(PYTHON) tests/run.py --binary $(BUILD)/mockupstream --asan-binary $(ASAN_DIR)/mockupstream

fuzz-quick: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(FUZZ_DIR)/corpus-$$n; \
	  echo "fuzz $$n (5s)"; $$f -max_total_time=5 -print_final_stats=0 -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus-$$n tests/fuzz/corpus/$$n >/dev/null 2>$(FUZZ_DIR)/$$n.log || { tail -40 $(FUZZ_DIR)/$$n.log; exit 1; }; done

fuzz: $(FUZZ_BINS)
	@for f in $(FUZZ_BINS); do n=$$(basename $$f); mkdir -p $(FUZZ_DIR)/corpus-$$n; \
	  $$f -max_total_time=$(FUZZ_SECONDS) -artifact_prefix=$(FUZZ_DIR)/ $(FUZZ_DIR)/corpus-$$n tests/fuzz/corpus/$$n || exit 1; done

test: deps
	$(MAKE) -j2 all asan plain
	$(MAKE) -j2 unit
	$(MAKE) fuzz-quick
	@if [ -n "$$CI" ] || { [ "$$(id -u)" = 0 ] && command -v podman >/dev/null; }; then $(MAKE) image-test; \
	  else echo "image-test: skipped (needs root and podman from make deps)"; fi
	$(PYTHON) tests/run.py --binary $(BUILD)/mockupstream --asan-binary $(ASAN_DIR)/mockupstream

# The real image: base debootstrapped once into $(BUILD)/image-base/, podman on a private store.
image-test: deps
	bash tests/image/test_image.sh $(BUILD)

bench: deps all
	$(PYTHON) tools/bench $(BENCH_ARGS)

# Delay queue microbenchmark (ns per push/fire/cancel at 100,000 held); not part of `make test`.
bench-delay: $(BUILD)/bench/bench_delay
	./$(BUILD)/bench/bench_delay

$(BUILD)/bench/bench_delay: tests/unit/bench_delay.c server/delay.c $(SERVER_HDR) Makefile
	@mkdir -p $(BUILD)/bench
	$(CC) $(CFLAGS_COMMON) $(CFLAGS) -o $@ $< -lev -ljemalloc -lm

clean:
	rm -rf $(BUILD)
