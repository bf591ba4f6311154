# shellcheck shell=bash
# Helpers for running the real Debezium Server 2.7.3 (tests/tools/debezium-server)
# between a throwaway PostgreSQL and a real nats-server with JetStream. Sourced
# after lib.sh by test_debezium.sh and tests/tools/debezium-capture.
#
# Debezium is configured from examples/debezium/application.properties as
# shipped, with only what differs on this machine (addresses, user, offsets
# file) and what a caller asks for replaced; nats-server from
# examples/debezium/nats-server.conf, with its address, ports and store given
# on the command line (which wins over the file).

DEBEZIUM_TOOL="$ROOT/tests/tools/debezium-server"
DEBEZIUM_EXAMPLE="$ROOT/examples/debezium/application.properties"
NATS_EXAMPLE_CONF="$ROOT/examples/debezium/nats-server.conf"
# shellcheck disable=SC2034 # used by tests/tools/debezium-capture
NATS_CAPTURE="$ROOT/tests/tools/nats_capture.py"
# Debezium Server 2.7's sink always names its stream so (stream-name is 3.5+).
DEBEZIUM_STREAM=DebeziumStream

declare -A DEBEZIUM_PID=()
declare -A DEBEZIUM_LOG=()
declare -A DEBEZIUM_STARTS=()

# Downloads (once) and verifies the distribution. Skips the test, exit 0,
# only when it cannot be downloaded; a verification failure fails it.
debezium_fetch_or_skip() {
    local status=0
    "$DEBEZIUM_TOOL" fetch >/dev/null || status=$?
    if [ "$status" = 2 ]; then
        log "SKIP: the Debezium Server 2.7.3.Final distribution cannot be downloaded (see above)"
        exit 0
    fi
    [ "$status" = 0 ] || fail "the Debezium Server distribution could not be prepared (see above)"
}

# pg_start with logical decoding: wal_level=logical and TCP on 127.0.0.1:PG_PORT.
pg_start_logical() {
    PG_DIR="$WORK/pg"
    PG_PORT=$(free_port)
    DATABASE_URL=$("$ROOT/postgresql/pg-local" start "$PG_DIR" --logical "$PG_PORT")
    export DATABASE_URL
}

NATS_PORT=""
NATS_MONITOR_PORT=""
NATS_URL=""
NATS_PID=""
# nats_start [max_payload]: the example configuration (max_payload 8MB)
# unless another bound is given; the same ports and store on every restart.
# shellcheck disable=SC2120 # MAX_PAYLOAD is optional: most callers pass none
nats_start() {
    if [ -z "$NATS_PORT" ]; then
        NATS_PORT=$(free_port)
        NATS_MONITOR_PORT=$(free_port)
        NATS_URL="nats://127.0.0.1:$NATS_PORT"
    fi
    local conf=$NATS_EXAMPLE_CONF
    if [ -n "${1:-}" ]; then
        conf="$WORK/nats-$1.conf"
        sed "s/^max_payload:.*/max_payload: $1/" "$NATS_EXAMPLE_CONF" >"$conf"
    fi
    nats-server -c "$conf" -a 127.0.0.1 -p "$NATS_PORT" -m "$NATS_MONITOR_PORT" -sd "$WORK/jetstream" \
        >>"$ARTIFACTS/$TEST_NAME.nats-server.log" 2>&1 &
    NATS_PID=$!
    BACKGROUND_PIDS+=("$NATS_PID")
    wait_for "nats-server to listen" 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$NATS_PORT"
}

# nats_kill [signal]: SIGKILL by default, as a crash; returns once it is gone.
nats_kill() {
    kill "-${1:-KILL}" "$NATS_PID"
    wait "$NATS_PID" 2>/dev/null || true
}

# The JetStream state of the stream as JSON (monitoring endpoint).
nats_stream_state() {
    curl -fsS "http://127.0.0.1:$NATS_MONITOR_PORT/jsz?streams=true" |
        jq -c --arg s "$DEBEZIUM_STREAM" '[.account_details[]?.stream_detail[]? | select(.name == $s) | .state][0]'
}

# debezium_properties [key=value ...]: the example file with this machine's
# settings and the given ones in place of the file's.
debezium_properties() {
    local -a overrides=(
        "debezium.sink.nats-jetstream.url=$NATS_URL"
        "debezium.source.database.hostname=127.0.0.1"
        "debezium.source.database.port=$PG_PORT"
        "debezium.source.database.user=postgres"
        "debezium.source.database.password=unused"
        "debezium.source.offset.storage.file.filename=data/offsets.dat"
        "quarkus.log.console.json=false"
        "$@"
    )
    printf '%s\n' "${overrides[@]}" | awk -F= '
        NR == FNR { key = $1; sub(/=.*/, "", key); value[key] = $0; order[++n] = key; next }
        /^[ \t]*(#|$)/ { print; next }
        { key = $1; sub(/[ \t]*$/, "", key) }
        key in value { if (!(key in done)) { print value[key]; done[key] = 1 } next }
        { print }
        END { for (i = 1; i <= n; i++) if (!(order[i] in done)) { print value[order[i]]; done[order[i]] = 1 } }
    ' - "$DEBEZIUM_EXAMPLE"
}

# debezium_start NAME [key=value ...]: starts Debezium Server with its own
# working directory (offsets in $WORK/debezium-NAME/data, kept across
# restarts of the same NAME) and a log per start.
debezium_start() {
    local name=$1
    shift
    local dir="$WORK/debezium-$name" n=$((${DEBEZIUM_STARTS[$name]:-0} + 1))
    DEBEZIUM_STARTS[$name]=$n
    DEBEZIUM_LOG[$name]="$ARTIFACTS/$TEST_NAME.debezium-$name.$n.log"
    mkdir -p "$dir/conf" "$dir/data"
    debezium_properties "$@" >"$dir/conf/application.properties"
    "$DEBEZIUM_TOOL" run "$dir" >"${DEBEZIUM_LOG[$name]}" 2>&1 &
    DEBEZIUM_PID[$name]=$!
    BACKGROUND_PIDS+=("$!")
}

# Waits until the connector streams from the replication slot. Fails early
# with the end of its log when Debezium exits instead.
debezium_wait_streaming() {
    local name=$1 timeout=${2:-120} deadline
    deadline=$((SECONDS + timeout))
    until grep -q "PostgresStreamingChangeEventSource.*Processing messages" "${DEBEZIUM_LOG[$name]}"; do
        if ! kill -0 "${DEBEZIUM_PID[$name]}" 2>/dev/null; then
            tail -n 30 "${DEBEZIUM_LOG[$name]}" >&2
            fail "Debezium $name exited before streaming (log: ${DEBEZIUM_LOG[$name]})"
        fi
        [ "$SECONDS" -lt "$deadline" ] || fail "Debezium $name not streaming after ${timeout}s"
        sleep 0.2
    done
}

# debezium_wait_exit NAME TIMEOUT: waits for the process to end by itself;
# DEBEZIUM_EXIT is its exit status. Status 1 if it is still running.
debezium_wait_exit() {
    local name=$1 timeout=$2 deadline pid
    pid=${DEBEZIUM_PID[$name]}
    deadline=$((SECONDS + timeout))
    while kill -0 "$pid" 2>/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
    # The test reads DEBEZIUM_EXIT after this returns.
    # shellcheck disable=SC2034
    {
        DEBEZIUM_EXIT=0
        wait "$pid" 2>/dev/null || DEBEZIUM_EXIT=$?
    }
}

# debezium_stop NAME: SIGTERM (Debezium flushes its offsets and closes the
# NATS connection) and waits for the end.
debezium_stop() {
    local pid=${DEBEZIUM_PID[$1]}
    kill -TERM "$pid" 2>/dev/null || return 0
    debezium_wait_exit "$1" 30 || fail "Debezium $1 still running 30s after SIGTERM"
}
