# shellcheck shell=bash
# The script library of the integration tests (tests/integration/test_*.sh)
# and of the benchmark suite (bench/run.sh): a throwaway PostgreSQL, instances
# of the service, background processes, waits and assertions.
#
# A script sources this file, calls pg_start and piper_start as needed and
# ends with test_done. Every process it starts through this library is
# stopped by the EXIT trap, pass or fail; on failure the last lines of the
# service's and PostgreSQL's logs are printed.
#
# Waits wait for a signal (a log line, a metric's value, an HTTP answer, a
# process's exit, a file's content), never for a fixed time: each has a
# timeout and fails the script with what it waited for.
#
# Environment: PIPER_BIN (binary under test, default bin/event-piper),
# ARTIFACTS (where the service's logs go, default tests/artifacts),
# TEST_NAME (names the logs and the work directory, default the script's
# file name without .sh), METRICS_CHECK (0: wait_metric does not check the
# exposition strictly, see piper_metrics).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PIPER_BIN=${PIPER_BIN:-bin/event-piper}
case "$PIPER_BIN" in /*) ;; *) PIPER_BIN="$ROOT/$PIPER_BIN" ;; esac
# Used by the scripts that source this file: the project's strict SSE
# client, and the client examples as make builds them (make examples) and
# .ci/install-deps test installs them.
# shellcheck disable=SC2034
{
    SSE_CLIENT="$ROOT/build/tools/sse-client"
    SPRING_JAR="$ROOT/examples/spring/target/event-piper-webclient.jar"
    GO_CLIENT="$ROOT/build/examples/go-client"
    PYTHON_VENV="$ROOT/examples/python/.venv"
}
TEST_NAME=${TEST_NAME:-$(basename "$0" .sh)}
ARTIFACTS=${ARTIFACTS:-$ROOT/tests/artifacts}
WORK=$(mktemp -d "/tmp/piper-$TEST_NAME.XXXXXX")
chmod 755 "$WORK" # the postgres user reaches the cluster inside when run as root
mkdir -p "$ARTIFACTS"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:halt_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

PG_DIR=""
DATABASE_URL=""
declare -a PIPER_PIDS=()     # instances still to be killed by the cleanup
declare -A PIPER_PID_OF=()   # instance name -> pid (of its latest start)
declare -A PIPER_PORTS=()    # instance name -> port
declare -A PIPER_LOGS=()     # name -> log file printed on failure (scripts add their own)
declare -A PIPER_SCHEMES=()  # instance name -> https when started with TLS_CERT_FILE
declare -a BACKGROUND_PIDS=() # processes of background(), stopped by the cleanup
LAST_PID=""
FAILED=0

# ---- messages and assertions ------------------------------------------------

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

fail() {
    log "FAIL: $*"
    FAILED=1
    exit 1
}

assert_eq() { # expected actual message
    [ "$1" == "$2" ] || fail "$3: expected [$1], got [$2]"
}

assert_contains() { # haystack needle message
    case "$1" in *"$2"*) ;; *) fail "$3: [$2] not found in [$1]" ;; esac
}

assert_not_contains() { # haystack needle message
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

# ---- processes ----------------------------------------------------------------

cleanup() {
    local status=$? pid name
    # disown: no job report from bash for processes it ends here.
    for pid in "${BACKGROUND_PIDS[@]}"; do disown "$pid" 2>/dev/null || true; kill "$pid" 2>/dev/null || true; done
    for pid in "${PIPER_PIDS[@]}"; do disown "$pid" 2>/dev/null || true; kill -9 "$pid" 2>/dev/null || true; done
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

# background COMMAND...: runs COMMAND in the background, stopped (SIGTERM)
# by the cleanup unless stop_quietly stopped it before; its pid is left in
# LAST_PID. Redirections of the call apply to COMMAND.
background() {
    "$@" &
    LAST_PID=$!
    BACKGROUND_PIDS+=("$LAST_PID")
}

# forget_pid PID: the cleanup no longer signals PID (it exited and was
# reaped, so the number may be reused).
forget_pid() {
    local keep=() p
    for p in "${BACKGROUND_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    BACKGROUND_PIDS=("${keep[@]}")
    keep=()
    for p in "${PIPER_PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
    PIPER_PIDS=("${keep[@]}")
}

# stop_quietly PID...: SIGTERM to each, then waits for each to exit (SIGKILL
# after 10 s) and reaps it, whatever its status.
stop_quietly() {
    local pid
    for pid in "$@"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "$@"; do
        within 10 exited "$pid" || kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        forget_pid "$pid"
    done
}

# ---- waits ----------------------------------------------------------------------

# now_us: microseconds since the epoch, from bash's own clock.
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }

# within SECONDS COMMAND...: runs COMMAND every 50 ms until it succeeds;
# status 1 if it has not after SECONDS. COMMAND's stderr is kept, so a check
# inside it can fail the script with its own message (a client that died).
within() {
    local deadline=$(($(now_us) + $1 * 1000000))
    shift
    until "$@" >/dev/null; do
        [ "$(now_us)" -lt "$deadline" ] || return 1
        sleep 0.05
    done
}

# wait_for DESCRIPTION SECONDS COMMAND...: within, failing the script with
# DESCRIPTION on timeout; COMMAND's stderr is discarded.
wait_for() {
    local what=$1 timeout=$2
    shift 2
    within "$timeout" quietly "$@" || fail "timed out after ${timeout}s waiting for $what"
}
quietly() { "$@" 2>/dev/null; }

exited() { ! kill -0 "$1" 2>/dev/null; }

# wait_output VALUE SECONDS DESCRIPTION COMMAND...: until COMMAND prints
# VALUE; fails with what it printed last.
wait_output() {
    local want=$1 timeout=$2 what=$3
    shift 3
    within "$timeout" prints "$want" "$@" ||
        fail "timed out after ${timeout}s waiting for $want $what (there are $("$@" 2>/dev/null || true))"
}
prints() { local want=$1; shift; [ "$("$@")" = "$want" ]; } # VALUE COMMAND...

# wait_exit PID SECONDS DESCRIPTION: until the process has exited (it is not
# reaped: `wait PID` still gives its status).
wait_exit() {
    within "$2" exited "$1" || fail "timed out after ${2}s waiting for $3 (pid $1 still running)"
}

# file_size FILE: its size in bytes (0 while it does not exist); an offset
# for wait_log and wait_pg_log.
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# lines_matching FILE OFFSET PATTERN: how many lines of FILE after byte
# OFFSET match the extended regular expression PATTERN.
lines_matching() {
    tail -c +$(($2 + 1)) "$1" 2>/dev/null | grep -cE -- "$3" || true
}

# has_lines FILE OFFSET PATTERN COUNT: status 0 once FILE has COUNT such lines.
has_lines() { [ "$(lines_matching "$1" "$2" "$3")" -ge "$4" ]; }

# wait_file_lines FILE PATTERN COUNT SECONDS DESCRIPTION [OFFSET]: until FILE
# (after byte OFFSET, default 0) has COUNT lines matching PATTERN (extended
# regular expression).
wait_file_lines() {
    local file=$1 pattern=$2 count=$3 timeout=$4 what=$5 offset=${6:-0}
    within "$timeout" has_lines "$file" "$offset" "$pattern" "$count" ||
        fail "timed out after ${timeout}s waiting for $what ($(lines_matching "$file" "$offset" "$pattern") of $count lines matching /$pattern/ in $file)"
}

# wait_log NAME PATTERN [SECONDS [OFFSET [COUNT]]]: until the log of instance
# NAME, from byte OFFSET on (default 0, see log_size), has COUNT (default 1)
# lines matching PATTERN (extended regular expression). Fails after SECONDS
# (default 10), or as soon as the instance has exited without them.
wait_log() {
    local name=$1 pattern=$2 timeout=${3:-10} offset=${4:-0} count=${5:-1} file
    file=$(piper_log "$name")
    within "$timeout" log_has "$name" "$file" "$offset" "$pattern" "$count" ||
        fail "timed out after ${timeout}s waiting for $count line(s) matching /$pattern/ in the log of $name ($(lines_matching "$file" "$offset" "$pattern") so far)"
}

log_has() { # NAME FILE OFFSET PATTERN COUNT
    has_lines "$2" "$3" "$4" "$5" && return 0
    piper_running "$1" || fail "$1 exited while waiting for /$4/ in its log"
    return 1
}

# log_size NAME: the current size of the instance's log, as an OFFSET for
# wait_log: only lines written after this moment count.
log_size() { file_size "$(piper_log "$1")"; }

# http_code URL [CURL ARGS...]: the status of a request to URL, 000 when it
# gets no answer.
http_code() {
    local url=$1
    shift
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" || true
}

answers() { [ "$(http_code "$1")" = "$2" ]; } # URL CODE

# wait_http_status URL CODE SECONDS DESCRIPTION: until GET URL answers CODE.
wait_http_status() {
    local url=$1 code=$2 timeout=$3
    within "$timeout" answers "$url" "$code" ||
        fail "timed out after ${timeout}s waiting for $4 ($url answers $(http_code "$url"), not $code)"
}

# wait_listening DESCRIPTION PID URL SECONDS [LOG...]: until GET URL answers
# 2xx; fails at once, showing the LOG files, if PID exits first.
wait_listening() {
    local what=$1 pid=$2 url=$3 timeout=$4
    shift 4
    within "$timeout" listening "$what" "$pid" "$url" "$@" || fail "$what did not answer $url within ${timeout}s"
}
listening() { # DESCRIPTION PID URL [LOG...]
    local what=$1 pid=$2 url=$3
    shift 3
    curl -fs -o /dev/null --max-time 5 "$url" && return 0
    if exited "$pid"; then
        [ $# -eq 0 ] || tail -n 40 "$@" >&2 || true
        fail "$what exited at start-up"
    fi
    return 1
}

# wait_port PORT SECONDS DESCRIPTION: until 127.0.0.1:PORT accepts connections.
wait_port() {
    within "$2" accepts "$1" || fail "timed out after ${2}s waiting for $3 (port $1)"
}

accepts() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; } # PORT

# http_status [-D HEADERS] [-o BODY] CURL ARGS...: the HTTP status of a
# request, 000 without an answer. Headers and body go to HEADERS and BODY
# (default $WORK/headers and $WORK/body). An answer that is a
# text/event-stream is ended by the client as soon as its first bytes (the
# retry: field) arrived; any other answer is read to its end.
http_status() {
    local head="$WORK/headers" body="$WORK/body" pid
    local -a args=()
    while [ $# -gt 0 ]; do
        case "$1" in
            -D) head=$2; shift 2 ;;
            -o) body=$2; shift 2 ;;
            *) args+=("$1"); shift ;;
        esac
    done
    : >"$head"
    : >"$body"
    curl -s -N -D "$head" -o "$body" --max-time 10 "${args[@]}" &
    pid=$!
    within 10 answered "$pid" "$head" "$body" || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    awk 'toupper($1) ~ /^HTTP\// { code = $2 } END { print (code == "") ? "000" : code }' "$head"
}

answered() { # CURL_PID HEADERS BODY: curl is done, or a stream has begun
    exited "$1" && return 0
    [ -s "$3" ] && grep -qi '^content-type: text/event-stream' "$2"
}

# stream_until FILE PATTERN SECONDS CURL ARGS...: reads a stream with curl
# into FILE until it has a line matching PATTERN (extended regular
# expression), curl ends, or SECONDS pass; then ends curl. Status 0 when FILE
# has such a line; the caller checks the rest of FILE.
stream_until() {
    local file=$1 pattern=$2 timeout=$3 pid
    shift 3
    : >"$file"
    curl -s -N --max-time "$timeout" "$@" >"$file" &
    pid=$!
    within "$timeout" stream_has "$pid" "$file" "$pattern" || true
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    grep -qE -- "$pattern" "$file"
}
stream_has() { grep -qE -- "$3" "$2" || exited "$1"; } # CURL_PID FILE PATTERN

# ---- TLS ---------------------------------------------------------------------------

# tls_make_cert DIR: a throwaway certificate authority (DIR/ca.pem) and a
# server certificate it signed for localhost and 127.0.0.1 (DIR/server.pem,
# key DIR/server.key), for TLS_CERT_FILE and TLS_KEY_FILE. Exports
# CURL_CA_BUNDLE=DIR/ca.pem, so every curl (this library's waits too) trusts
# it, and sets TLS_CA to the same file for the other clients.
tls_make_cert() {
    local dir=$1
    mkdir -p "$dir"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
        -subj "/CN=event-piper test CA" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null || fail "openssl: cannot make the test CA"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=localhost" \
        -keyout "$dir/server.key" -out "$dir/server.csr" 2>/dev/null || fail "openssl: cannot make a key"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" "extendedKeyUsage=serverAuth" \
        "basicConstraints=CA:FALSE" >"$dir/server.ext"
    openssl x509 -req -in "$dir/server.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
        -days 2 -extfile "$dir/server.ext" -out "$dir/server.pem" 2>/dev/null ||
        fail "openssl: cannot sign the server certificate"
    TLS_CA=$dir/ca.pem
    export CURL_CA_BUNDLE=$TLS_CA
}

# ---- PostgreSQL -------------------------------------------------------------------

# pg_start: a throwaway PostgreSQL in $WORK/pg (the schema applied); sets and
# exports DATABASE_URL.
pg_start() {
    PG_DIR="$WORK/pg"
    DATABASE_URL=$("$ROOT/postgresql/pg-local" start "$PG_DIR")
    export DATABASE_URL
}

# pg_restart: pg_ctl restart -m fast; returns once it accepts connections.
pg_restart() {
    "$ROOT/postgresql/pg-local" restart "$PG_DIR"
}

# pg_log_size: an OFFSET for wait_pg_log.
pg_log_size() { file_size "$PG_DIR/postgres.log"; }

# wait_pg_log PATTERN SECONDS DESCRIPTION [OFFSET]: until PostgreSQL's log,
# after byte OFFSET, has a line matching PATTERN.
wait_pg_log() {
    wait_file_lines "$PG_DIR/postgres.log" "$1" 1 "$2" "$3" "${4:-0}"
}

sql() {
    psql "$DATABASE_URL" -X -q -t -A -v ON_ERROR_STOP=1 -c "$1"
}

insert_event() { # subscriber type payload-json; prints the id
    sql "insert into events (type, subscriber, payload) values ('$2', '$1', '$3') returning id"
}

# ---- the service ----------------------------------------------------------------

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
# the given environment and flags, on a free port unless PORT=... is given
# (a restart on the port clients know), logging to
# $ARTIFACTS/$TEST_NAME.NAME.log, and waits until it answers /healthz. With
# TLS_CERT_FILE=... (see tls_make_cert) the instance speaks TLS and
# piper_url gives https URLs.
piper_start() {
    local name=$1
    shift
    local port="" arg pid logfile scheme=http
    local -a vars=() flags=()
    for arg in "$@"; do
        case "$arg" in
            --*) flags+=("$arg") ;;
            PORT=*) port=${arg#PORT=} ;;
            TLS_CERT_FILE=?*) scheme=https; vars+=("$arg") ;;
            *) vars+=("$arg") ;;
        esac
    done
    PIPER_SCHEMES[$name]=$scheme
    [ -n "$port" ] || port=$(free_port)
    logfile="$ARTIFACTS/$TEST_NAME.$name.log"
    env DATABASE_URL="$DATABASE_URL" PORT="$port" BIND_ADDRESS=127.0.0.1 DEMO_DIR="$ROOT/examples/demo" \
        "${vars[@]}" "$PIPER_BIN" "${flags[@]}" >"$logfile" 2>&1 &
    pid=$!
    PIPER_PIDS+=("$pid")
    PIPER_PID_OF[$name]=$pid
    PIPER_PORTS[$name]=$port
    PIPER_LOGS[$name]=$logfile
    wait_listening "$name" "$pid" "$scheme://127.0.0.1:$port/healthz" 10
}

piper_port() { echo "${PIPER_PORTS[$1]}"; }
piper_pid() { echo "${PIPER_PID_OF[$1]}"; }
piper_log() { echo "${PIPER_LOGS[$1]}"; }
piper_url() { echo "${PIPER_SCHEMES[$1]:-http}://127.0.0.1:$(piper_port "$1")${2:-}"; }
# piper_running NAME: status 0 while the instance's process is alive.
piper_running() { kill -0 "$(piper_pid "$1")" 2>/dev/null; }

# Waits until the instance reports ready (events flow from PostgreSQL).
piper_wait_ready() {
    wait_http_status "$(piper_url "$1" /readyz)" 200 "${2:-20}" "$1 to be ready"
}

# metric_value METRIC: from exposition text on stdin, the value of the series
# METRIC, or the sum of the series METRIC{...}; nothing when there is none.
metric_value() {
    awk -v n="$1" '$1 == n { v = $2; exact = 1 } index($1, n "{") == 1 { s += $2; found = 1 }
        END { if (exact) print v; else if (found) printf "%.0f\n", s }'
}

# piper_metrics NAME: the instance's /metrics (over HTTP/1.1, so that reading
# it over TLS adds no HTTP/2 connection to the counts), checked strictly
# (tests/tools/check_metrics.py: the official Python client's parser plus
# the exposition rules it does not enforce); the script fails on any problem.
piper_metrics() {
    local text
    text=$(curl -fsS --http1.1 "$(piper_url "$1" /metrics)") || fail "GET /metrics on $1 failed"
    printf '%s\n' "$text" | /usr/bin/python3 "$ROOT/tests/tools/check_metrics.py" ||
        fail "/metrics of $1 is not a valid Prometheus exposition (see above)"
}

# piper_metric NAME METRIC: METRIC's value (see metric_value) from the
# strictly checked /metrics; the script fails when there is no such series.
piper_metric() {
    local text value
    text=$(piper_metrics "$1") || exit 1
    value=$(printf '%s\n' "$text" | metric_value "$2")
    [ -n "$value" ] || fail "no metric $2 on $1"
    echo "$value"
}

# piper_metric_now NAME METRIC: the same read without the strict check, for
# polling and sampling (a Python start per read would be the cost); nothing
# when there is no such series, status non-zero when /metrics did not answer.
piper_metric_now() {
    curl -fs --http1.1 --max-time 5 "$(piper_url "$1" /metrics)" | metric_value "$2"
}

# wait_metric NAME METRIC OP VALUE [SECONDS]: until METRIC on instance NAME
# compares to VALUE with OP (=, !=, -lt, -le, -gt, -ge, as test takes them),
# polled unchecked, then /metrics is checked strictly once (unless
# METRICS_CHECK=0). Fails after SECONDS (default 10) with the value it last
# had, or as soon as the instance has exited.
wait_metric() {
    local name=$1 metric=$2 op=$3 want=$4 timeout=${5:-10}
    within "$timeout" metric_is "$name" "$metric" "$op" "$want" ||
        fail "timed out after ${timeout}s waiting for $metric $op $want on $name (it is $(piper_metric_now "$name" "$metric" || true))"
    [ "${METRICS_CHECK:-1}" = 0 ] || piper_metrics "$name" >/dev/null
}

metric_is() { # NAME METRIC OP VALUE
    local v
    v=$(piper_metric_now "$1" "$2") || v=""
    [ -n "$v" ] && compare "$v" "$3" "$4" && return 0
    piper_running "$1" || fail "$1 exited while waiting for $2 $3 $4"
    return 1
}

# compare A OP B: test's comparison of A and B, OP one of =, !=, -lt, -le,
# -gt, -ge.
compare() {
    case "$2" in
        =) [ "$1" = "$3" ] ;;
        !=) [ "$1" != "$3" ] ;;
        -lt) [ "$1" -lt "$3" ] ;;
        -le) [ "$1" -le "$3" ] ;;
        -gt) [ "$1" -gt "$3" ] ;;
        -ge) [ "$1" -ge "$3" ] ;;
        *) fail "compare: unknown operator $2" ;;
    esac
}

# piper_kill NAME: SIGKILL, as a crash or an OOM kill would; returns once the
# process is gone.
piper_kill() {
    local pid
    pid=$(piper_pid "$1")
    disown "$pid" 2>/dev/null || true # no "Killed" job report from bash
    kill -9 "$pid" 2>/dev/null || fail "$1 was not running"
    within 5 exited "$pid" || fail "$1 survived SIGKILL"
    forget_pid "$pid"
}

# piper_stop NAME [SECONDS]: SIGTERM, expects exit status 0 within SECONDS
# (default 20), so no sanitizer report, which would make the status non-zero.
piper_stop() {
    local name=$1 timeout=${2:-20} pid status=0
    pid=$(piper_pid "$name")
    kill -TERM "$pid" 2>/dev/null || fail "$name was not running"
    within "$timeout" exited "$pid" || fail "$name still running ${timeout}s after SIGTERM"
    wait "$pid" || status=$?
    forget_pid "$pid"
    [ "$status" = 0 ] || fail "$name exited with status $status (see $(piper_log "$name"))"
    if grep -q "ERROR: AddressSanitizer\|runtime error:\|ERROR: LeakSanitizer" "$(piper_log "$name")"; then
        fail "$name: sanitizer report in $(piper_log "$name")"
    fi
}
