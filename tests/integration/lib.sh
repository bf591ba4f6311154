# Shared helpers for the integration tests. Each test script sources this,
# calls pg_start and piper_start as needed, and ends with test_done. Every
# process a test starts is stopped by the EXIT trap, pass or fail; on failure
# the service and PostgreSQL logs are printed.
#
# Environment: PIPER_BIN (binary under test, default bin/event-piper),
# ARTIFACTS (where logs go, default tests/artifacts).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PIPER_BIN=${PIPER_BIN:-bin/event-piper}
case "$PIPER_BIN" in /*) ;; *) PIPER_BIN="$ROOT/$PIPER_BIN" ;; esac
SSE_CLIENT="$ROOT/build/tools/sse-client"
# The client examples as make builds them (make examples) and
# .ci/install-deps test installs them.
SPRING_JAR="$ROOT/examples/spring/target/event-piper-webclient.jar"
GO_CLIENT="$ROOT/build/examples/go-client"
PYTHON_VENV="$ROOT/examples/python/.venv"
TEST_NAME=$(basename "$0" .sh)
ARTIFACTS=${ARTIFACTS:-$ROOT/tests/artifacts}
WORK=$(mktemp -d "/tmp/piper-$TEST_NAME.XXXXXX")
chmod 755 "$WORK"
mkdir -p "$ARTIFACTS"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

PG_DIR=""
DATABASE_URL=""
declare -a PIPER_PIDS=()
declare -A PIPER_PORTS=()
declare -A PIPER_LOGS=()
declare -a BACKGROUND_PIDS=()
FAILED=0

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

fail() {
    log "FAIL: $*"
    FAILED=1
    exit 1
}

cleanup() {
    local status=$?
    for pid in "${BACKGROUND_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIPER_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    if [ "$status" != 0 ] || [ "$FAILED" != 0 ]; then
        for name in "${!PIPER_LOGS[@]}"; do
            log "---- last lines of $name log (${PIPER_LOGS[$name]})"
            tail -n 40 "${PIPER_LOGS[$name]}" >&2 || true
        done
        if [ -n "$PG_DIR" ] && [ -f "$PG_DIR/postgres.log" ]; then
            log "---- last lines of the PostgreSQL log"
            tail -n 20 "$PG_DIR/postgres.log" >&2 || true
        fi
    fi
    if [ -n "$PG_DIR" ]; then
        "$ROOT/postgresql/pg-local" stop "$PG_DIR" || true
    fi
    rm -rf "$WORK"
    exit "$status"
}
trap cleanup EXIT

# Starts a throwaway PostgreSQL for this test and sets DATABASE_URL.
pg_start() {
    PG_DIR="$WORK/pg"
    DATABASE_URL=$("$ROOT/postgresql/pg-local" start "$PG_DIR")
    export DATABASE_URL
}

pg_restart() {
    "$ROOT/postgresql/pg-local" restart "$PG_DIR"
}

sql() {
    psql "$DATABASE_URL" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"
}

insert_event() { # subscriber type payload-json
    sql "insert into events (type, subscriber, payload) values ('$2', '$1', '$3') returning id"
}

free_port() {
    local port
    while :; do
        port=$((15000 + RANDOM % 17000)) # below the ephemeral range (32768+)
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return
        fi
    done
}

# piper_start NAME [VAR=value | --flag=value ...]: starts an instance with
# the given environment and flags, on a free port unless PORT=... is given,
# and waits until it answers /healthz.
piper_start() {
    local name=$1
    shift
    local port arg
    local -a vars=() flags=()
    port=""
    for arg in "$@"; do
        case "$arg" in
            --*) flags+=("$arg") ;;
            PORT=*) port=${arg#PORT=} ;; # a restart on the port clients know
            *) vars+=("$arg") ;;
        esac
    done
    [ -n "$port" ] || port=$(free_port)
    local logfile="$ARTIFACTS/$TEST_NAME.$name.log"
    env DATABASE_URL="$DATABASE_URL" PORT="$port" BIND_ADDRESS=127.0.0.1 DEMO_DIR="$ROOT/examples/demo" "${vars[@]}" \
        "$PIPER_BIN" "${flags[@]}" >"$logfile" 2>&1 &
    local pid=$!
    PIPER_PIDS+=("$pid")
    PIPER_PORTS[$name]=$port
    PIPER_LOGS[$name]=$logfile
    eval "PIPER_PID_$name=$pid"
    local i
    for i in $(seq 1 100); do
        if curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || fail "$name exited at start-up"
        sleep 0.1
    done
    fail "$name did not answer /healthz"
}

piper_port() { echo "${PIPER_PORTS[$1]}"; }
piper_pid() { eval "echo \$PIPER_PID_$1"; }
piper_log() { echo "${PIPER_LOGS[$1]}"; }
piper_url() { echo "http://127.0.0.1:$(piper_port "$1")${2:-}"; }

# piper_metrics NAME: the instance's /metrics, checked strictly
# (tests/tools/check_metrics.py: the official Python client's parser plus
# the exposition rules it does not enforce); the test fails on any problem.
piper_metrics() {
    local text
    text=$(curl -fsS "$(piper_url "$1" /metrics)") || fail "GET /metrics on $1 failed"
    printf '%s\n' "$text" | /usr/bin/python3 "$ROOT/tests/tools/check_metrics.py" ||
        fail "/metrics of $1 is not a valid Prometheus exposition (see above)"
}
# piper_metric NAME METRIC: the value of an unlabelled series, or the sum of
# the series METRIC{...} when it has labels.
piper_metric() {
    local text
    text=$(piper_metrics "$1") || exit 1
    printf '%s\n' "$text" | awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $2; found = 1 }
        END { if (!found) exit 1; printf "%d\n", s }' || fail "no metric $2 on $1"
}

# Waits until the instance reports ready (LISTEN active).
piper_wait_ready() {
    local name=$1 timeout=${2:-20} i
    for i in $(seq 1 $((timeout * 10))); do
        if curl -fs "$(piper_url "$name" /readyz)" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.1
    done
    fail "$name not ready after ${timeout}s"
}

# piper_kill NAME: SIGKILL, as a crash or an OOM kill would; returns once the
# process is gone, which the cleanup then no longer signals (its pid may be
# reused).
piper_kill() {
    local pid keep=() p i
    pid=$(piper_pid "$1")
    disown "$pid" 2>/dev/null || true # no "Killed" job report from bash
    kill -9 "$pid" 2>/dev/null || fail "$1 was not running"
    for i in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$pid" 2>/dev/null && fail "$1 survived SIGKILL"
    for p in "${PIPER_PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
    PIPER_PIDS=("${keep[@]}")
}

# piper_stop NAME [timeout]: SIGTERM, expects exit status 0 in time (so no
# sanitizer report, which would make the status non-zero).
piper_stop() {
    local name=$1 timeout=${2:-20}
    local pid
    pid=$(piper_pid "$name")
    kill -TERM "$pid" 2>/dev/null || fail "$name was not running"
    local i
    for i in $(seq 1 $((timeout * 10))); do
        if ! kill -0 "$pid" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && fail "$name still running ${timeout}s after SIGTERM"
    local status=0
    wait "$pid" || status=$?
    [ "$status" = 0 ] || fail "$name exited with status $status (see $(piper_log "$name"))"
    grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$(piper_log "$name")" &&
        fail "$name: sanitizer report in $(piper_log "$name")"
    return 0
}

# Runs a command in the background, remembering it for cleanup; the pid is
# left in LAST_PID.
background() {
    "$@" &
    LAST_PID=$!
    BACKGROUND_PIDS+=("$LAST_PID")
}

# within SECONDS COMMAND...: polls COMMAND; status 1 if it never succeeds.
# Unlike wait_for, COMMAND's stderr is kept, so a check inside it can fail
# the test with its own message (a client that died, say).
within() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# wait_for DESCRIPTION TIMEOUT_SECONDS COMMAND...: polls until COMMAND succeeds.
wait_for() {
    local what=$1 timeout=$2
    shift 2
    local i
    for i in $(seq 1 $((timeout * 20))); do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.05
    done
    fail "timed out after ${timeout}s waiting for $what"
}

assert_eq() { # expected actual message
    [ "$1" == "$2" ] || fail "$3: expected [$1], got [$2]"
}

assert_contains() { # haystack needle message
    case "$1" in *"$2"*) ;; *) fail "$3: [$2] not found in [$1]" ;; esac
}

assert_not_contains() {
    case "$1" in *"$2"*) fail "$3: [$2] unexpectedly found" ;; *) ;; esac
}

assert_file_eq() { # expected-file actual-file message
    diff -u "$1" "$2" >&2 || fail "$3"
}

# expected_events CONSUMER AFTER_ID: the consumer's rows after AFTER_ID as
# the client examples print them, "<id> TAB <type> TAB <compact JSON>",
# computed independently of the service with Python's json module.
expected_events() {
    sql "select id, type, payload::text from events where subscriber = '$1' and id > $2 order by id" |
        /usr/bin/python3 -c '
import json, sys
for line in sys.stdin:
    id_, type_, payload = line.rstrip("\n").split("|", 2)
    print(id_, type_, json.dumps(json.loads(payload), ensure_ascii=False, separators=(",", ":")), sep="\t")
'
}

test_done() {
    log "ok"
}
