# event-piper
#
#   make build   bin/event-piper (-Wall -Wextra -Werror)
#   make run     build and run on port 4000; without DATABASE_URL, on a
#                throwaway PostgreSQL in .run/pg (started and stopped here)
#   make test    everything CI runs: deps, unit tests (plain and with
#                AddressSanitizer+UBSan), integration tests against a real
#                PostgreSQL with the sanitized binary, a bounded fuzz run
#   make lint    clang-format check of every C file, cppcheck on src/,
#                shellcheck on every shell script (make format fixes the first),
#                README's settings, errors, metrics and routes against the code
#   make deps    install missing Debian packages (apt-get as root; otherwise
#                prints the command)

CC ?= cc
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
PKGS := libpq libevent libevent_openssl jansson libnats libjwt libnghttp2 libssl libcrypto
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lwslay -pthread

WARNINGS := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-format-nonliteral -Wno-format-zero-length
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -DPIPER_VERSION=\"$(VERSION)\" $(WARNINGS) $(PKG_CFLAGS) -Isrc
RELEASE_CFLAGS := $(BASE_CFLAGS) -O2 -g
ASAN_CFLAGS := $(BASE_CFLAGS) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=undefined
ASAN_LDFLAGS := -fsanitize=address,undefined

# Everything but main.c, shared by the binary, unit tests and fuzz targets.
LIB_SRCS := $(wildcard src/*/*.c)
HEADERS := $(wildcard src/*/*.h)

RELEASE_OBJS := $(patsubst src/%.c,build/release/%.o,$(LIB_SRCS))
ASAN_OBJS := $(patsubst src/%.c,build/asan/%.o,$(LIB_SRCS))

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_RELEASE := $(patsubst tests/unit/%.c,build/release/tests/%,$(UNIT_SRCS))
UNIT_ASAN := $(patsubst tests/unit/%.c,build/asan/tests/%,$(UNIT_SRCS))

TOOLS := build/tools/sse-client build/tools/nats-publish
TOOL_TESTS := build/tools/test_sse_stream build/tools/test_latency

# Client examples the integration tests run as built here: the Spring one is
# packaged once by Maven (downloads cached in ~/.m2), the Go one by go build
# (standard library only, no download). The Python one's virtualenv is made
# by .ci/install-deps test.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
SPRING_JAR := examples/spring/target/event-piper-webclient.jar
GO_CLIENT := build/examples/go-client
EXAMPLES := $(SPRING_JAR) $(GO_CLIENT)

.PHONY: all build run test unit unit-asan integration asan fuzz deps test-deps bench-deps lint-deps clean format lint psql bench bench-smoke examples

all: build

build: bin/event-piper

bin/event-piper: build/release/main.o $(RELEASE_OBJS)
	@mkdir -p bin
	$(CC) -o $@ $^ $(PKG_LIBS)

build/asan/event-piper: build/asan/main.o $(ASAN_OBJS)
	$(CC) $(ASAN_LDFLAGS) -o $@ $^ $(PKG_LIBS)

build/release/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -c -o $@ $<

build/asan/%.o: src/%.c $(HEADERS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c -o $@ $<

# Link-time seams: a unit test may replace functions of other modules
# (-Wl,--wrap=f makes calls to f reach the test's __wrap_f).
TEST_LDFLAGS_test_replay := \
	-Wl,--wrap=pg_pool_acquire,--wrap=pg_pool_cancel,--wrap=pg_pool_release,--wrap=pg_conn_execute

build/release/tests/%: tests/unit/%.c $(RELEASE_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -o $@ $< $(RELEASE_OBJS) $(PKG_LIBS) -lcmocka $(TEST_LDFLAGS_$*)

build/asan/tests/%: tests/unit/%.c $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) $(ASAN_LDFLAGS) -o $@ $< $(ASAN_OBJS) $(PKG_LIBS) -lcmocka \
		$(TEST_LDFLAGS_$*)

CLIENT_SRCS := tests/tools/sse_client.c tests/tools/sse_stream.c tests/tools/latency.c
build/tools/sse-client: $(CLIENT_SRCS) tests/tools/sse_stream.h tests/tools/latency.h
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -Itests/tools -o $@ $(CLIENT_SRCS) $(PKG_LIBS)

build/tools/nats-publish: tests/tools/nats_publish.c
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -o $@ $< $(PKG_LIBS)

build/tools/test_sse_stream: tests/tools/test_sse_stream.c tests/tools/sse_stream.c tests/tools/sse_stream.h
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) $(ASAN_LDFLAGS) -Itests/tools -o $@ tests/tools/test_sse_stream.c \
		tests/tools/sse_stream.c -lcmocka

build/tools/test_latency: tests/tools/test_latency.c tests/tools/latency.c tests/tools/latency.h
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) $(ASAN_LDFLAGS) -Itests/tools -o $@ tests/tools/test_latency.c \
		tests/tools/latency.c -lcmocka

asan: build/asan/event-piper

examples: $(EXAMPLES)

# Maven's output goes to a log shown only on failure; touch: Maven leaves the
# jar alone when nothing changed.
$(SPRING_JAR): examples/spring/pom.xml $(shell find examples/spring/src -type f)
	@mkdir -p build
	@echo "mvn -B -q package (examples/spring)"
	@cd examples/spring && mvn -B -q package >../../build/spring-mvn.log 2>&1 || { cat ../../build/spring-mvn.log; exit 1; }
	@touch $@

# Go keeps its build cache under $HOME; without one, under build/.
$(GO_CLIENT): examples/go/go.mod examples/go/main.go
	@mkdir -p $(dir $@)
	cd examples/go && $(if $(HOME),,GOCACHE=$(CURDIR)/build/go-cache) $(GO) build -o ../../$@ .

# Without DATABASE_URL: a throwaway cluster in .run/pg, stopped on exit. The
# INT handler (not an ignore, which the service would inherit) keeps this
# shell alive to stop PostgreSQL after the service has shut down.
run: deps build
	@if [ -n "$$DATABASE_URL" ]; then exec bin/event-piper; fi; \
	url=$$(./postgresql/pg-local start .run/pg) || exit 1; \
	trap 'true' INT TERM; trap './postgresql/pg-local stop .run/pg' EXIT; \
	echo "event-piper: using a throwaway PostgreSQL: DATABASE_URL='$$url' (make psql opens it)"; \
	DATABASE_URL="$$url" bin/event-piper

unit: $(UNIT_RELEASE) $(TOOL_TESTS)
	@for t in $(UNIT_RELEASE) $(TOOL_TESTS); do echo "== $$t"; $$t || exit 1; done

unit-asan: $(UNIT_ASAN)
	@for t in $(UNIT_ASAN); do echo "== $$t"; $$t || exit 1; done

integration: build/asan/event-piper bin/event-piper $(TOOLS) $(EXAMPLES)
	@PIPER_BIN=build/asan/event-piper tests/integration/run-all

fuzz:
	@tests/fuzz/run

test: test-deps
	@$(MAKE) --no-print-directory build unit unit-asan integration fuzz bench-smoke
	@echo "all tests passed"

deps:
	@./.ci/install-deps run

test-deps:
	@./.ci/install-deps test

bench-deps:
	@./.ci/install-deps bench

lint-deps:
	@./.ci/install-deps lint

psql:
	@psql "$$(./postgresql/pg-local url .run/pg)"

build/bench/producer: bench/producer.c
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -o $@ $< $(PKG_LIBS)

build/bench/send_floor: bench/send_floor.c
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -o $@ $<

build/bench/stream-load: bench/stream_load.c
	@mkdir -p $(dir $@)
	$(CC) $(RELEASE_CFLAGS) -o $@ $< $(PKG_LIBS)

BENCH_TOOLS := bin/event-piper build/tools/sse-client build/bench/producer build/bench/send_floor \
	build/bench/stream-load

# The benchmark suite (bench/run.sh; results in bench/RESULTS.md).
bench: bench-deps $(BENCH_TOOLS)
	@bench/run.sh

# The same scenarios shrunk to seconds: proves the tools work, asserts no
# number. Part of make test.
bench-smoke: bench-deps $(BENCH_TOOLS)
	@SMOKE=1 bench/run.sh

# Every C and header file of the tree (npm packages aside) follows
# .clang-format; every shell script passes shellcheck (.shellcheckrc).
FORMAT_FILES = $(shell find src tests bench -name node_modules -prune -o -name '*.[ch]' -print | sort)
SHELL_SCRIPTS = tests/lib.sh $(wildcard tests/integration/*.sh) tests/integration/run-all \
	$(wildcard bench/*.sh) $(wildcard .ci/*) postgresql/pg-local tests/fuzz/run \
	$(shell find examples -name node_modules -prune -o -name '*.sh' -print | sort)
CPPCHECK_FLAGS := --enable=warning,performance,portability --inline-suppr --std=c11 \
	--error-exitcode=1 --quiet

format: lint-deps
	clang-format -i $(FORMAT_FILES)

lint: lint-deps
	@echo "== clang-format"
	@clang-format --dry-run -Werror $(FORMAT_FILES)
	@echo "== cppcheck src/"
	@cppcheck $(CPPCHECK_FLAGS) src/
	@echo "== shellcheck"
	@shellcheck $(SHELL_SCRIPTS)
	@echo "== README tables against the code"
	@python3 tests/tools/check_readme.py --self-test
	@python3 tests/tools/check_readme.py
	@echo "lint passed"

clean:
	rm -rf bin build examples/spring/target
