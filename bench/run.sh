#!/usr/bin/env bash
# event-piper benchmark suite (issue 6). `make bench` runs it.
#
#   bench/run.sh [scenario ...]     default: all, in this order
#     fanout     server CPU per delivery: 5,000 streams of one consumer, 10 events/s
#     nchan      the same fan-out and idle streams served by Nchan (nginx), side by side
#     nodejs     fan-out, idle streams and latency served by an idiomatic Node.js server
#     memory     RSS per idle stream at 10,000 streams; 19,000 streams all live
#     latency    INSERT-to-client latency: 1,000 streams on 1,000 consumers, 2,000 events/s
#     replay     1,000,000 rows to one client; 1,000 clients replaying 10,000 rows each
#     ingest     100,000 rows/s offered in 100-row transactions
#     overload   5,000 streams (100 of them stuck), 200 events/s offered
#     h2         fan-out over h2c, 100 connections x 50 streams; the same with Nchan
#     h2memory   RSS per idle HTTP/2 stream (100 x 100 and 10 x 1,000 streams)
#     tls        fan-out over TLS, HTTP/1.1 and h2; the same with Nchan
#     websocket  fan-out over WebSocket and over SSE, same client; idle WebSocket memory
#     multi      fan-out to streams of 1, 2 and 10 consumers (composite ids, one copy per delivery)
#
# PIPER_BIN_BEFORE=path/to/older/event-piper runs fanout, memory, latency,
# replay, ingest and overload with that binary too, just before the current
# one (see run_scenario).
#
# Each scenario starts its own service (bin/event-piper, or PIPER_BIN) on a
# throwaway PostgreSQL, is bounded in time, reads the server's CPU and RSS
# from /proc, and adds rows to the table printed at the end. SMOKE=1 shrinks
# every scenario to seconds (CI runs that to prove the tools work; nothing
# is asserted about the numbers). Client connections are spread over source
# addresses in 127.0.0.0/8 and several client processes.
#
# Starting PostgreSQL and the service, background processes, waits and the
# cleanup come from tests/lib.sh, shared with the integration tests; the
# service's log of each scenario is tests/artifacts/bench.<scenario>.log.
TEST_NAME=bench
METRICS_CHECK=0 # numbers only: the tests check the exposition format
source "$(dirname "$0")/../tests/lib.sh"
PRODUCER=$ROOT/build/bench/producer
SEND_FLOOR=$ROOT/build/bench/send_floor
STREAM_LOAD=$ROOT/build/bench/stream-load
SMOKE=${SMOKE:-0}
CLK_TCK=$(getconf CLK_TCK)
RESULTS=$WORK/results
: >"$RESULTS"
ulimit -n "$(ulimit -Hn)"

# size FULL SMOKE: the scenario's size, or its smoke-test size.
size() { if [ "$SMOKE" = 1 ]; then echo "$2"; else echo "$1"; fi; }
# result SCENARIO MEASURE VALUE TARGET
# ROW_TAG marks the rows of a run of the PIPER_BIN_BEFORE binary.
ROW_TAG=""
result() {
    printf '%s\t%s\t%s\t%s\n' "$1$ROW_TAG" "$2" "$3" "$4" >>"$RESULTS"
    log "$1$ROW_TAG: $2 = $3 (target $4)"
}

for tool in "$PIPER_BIN" "$SSE_CLIENT" "$PRODUCER" "$SEND_FLOOR" "$STREAM_LOAD" ${PIPER_BIN_BEFORE:+"$PIPER_BIN_BEFORE"}; do
    [ -x "$tool" ] || fail "$tool is missing: run make build build/tools/sse-client build/bench/producer build/bench/send_floor build/bench/stream-load"
done
pg_start

# ---- the server under measure -------------------------------------------------

SCENARIO=""  # the scenario running; names the service's instance and log
PIPER_PID="" # the service's process, while it runs
PORT=0       # the port the clients drive: the service's or a reference's

service_start() { # VAR=value...
    piper_start "$SCENARIO" LOG_LEVEL=warn MAX_SESSIONS=20000 "$@"
    piper_wait_ready "$SCENARIO" 10
    PIPER_PID=$(piper_pid "$SCENARIO")
    PORT=$(piper_port "$SCENARIO")
}
service_stop() {
    piper_stop "$SCENARIO" 30
    PIPER_PID=""
}
metric() { piper_metric_now "$SCENARIO" "$1"; }
# CPU ticks (user and system) and RSS of a process, by default the service.
cpu_split() { awk '{ print $14, $15 }' "/proc/${1:-$PIPER_PID}/stat"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/${1:-$PIPER_PID}/stat"; }
rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/${1:-$PIPER_PID}/status"; }
# wait_streams COUNT: until the service holds COUNT open streams (60 s at most).
wait_streams() { wait_metric "$SCENARIO" event_piper_sessions_open = "$1" 60; }
# clients N SESSIONS_EACH FIRST_IP_OCTET ARGS...: N sse-client processes in
# the background; each gets its own range of 20 source addresses.
declare -a CLIENT_PIDS=()
clients() {
    local n=$1 each=$2 octet=$3 k
    shift 3
    for k in $(seq 0 $((n - 1))); do
        background "$SSE_CLIENT" --port "$PORT" --sessions "$each" --quiet \
            --source-ips "127.0.$((octet + k)).1-127.0.$((octet + k)).20" "$@" \
            --latency-file "$WORK/latency.$octet.$k.hist" 2>"$WORK/client.$octet.$k.log"
        CLIENT_PIDS+=("$LAST_PID")
    done
}
stop_clients() {
    stop_quietly "${CLIENT_PIDS[@]}"
    CLIENT_PIDS=()
}
# wait_clients: waits for every client to exit by itself; CLIENTS_FAILED
# says how many failed.
CLIENTS_FAILED=0
wait_clients() {
    local pid
    CLIENTS_FAILED=0
    for pid in "${CLIENT_PIDS[@]}"; do
        wait "$pid" || CLIENTS_FAILED=$((CLIENTS_FAILED + 1))
        forget_pid "$pid"
    done
    CLIENT_PIDS=()
}
any_running() { # PID...: status 0 while one of them runs
    local pid
    for pid in "$@"; do kill -0 "$pid" 2>/dev/null && return 0; done
    return 1
}
# fields sum|max WORD FIELD FILE...: the sum or the largest of FIELD=value
# over the lines that start with WORD (the tools' one-line reports).
fields() {
    local how=$1 word=$2 field=$3
    shift 3
    cat "$@" | awk -v how="$how" -v w="$word" -v f="$field" '$1 == w {
        for (i = 2; i <= NF; i++) {
            split($i, kv, "=")
            if (kv[1] != f) continue
            s += kv[2]
            if (kv[2] + 0 > m) m = kv[2] + 0
        }
    } END { print (how == "max") ? m + 0 : s + 0 }'
}
# Over the sse-clients' "total ..." lines, and the producers' "produced ..." lines.
totals() { fields sum total "$1" "$WORK"/client.*.log; }
worst() { fields max total "$1" "$WORK"/client.*.log; }
# quantile Q: the Q quantile in ms of the latencies of all the clients'
# events together (their histograms added up), not the worst client's.
quantile() {
    sort -n "$WORK"/latency.*.hist | awk -v q="$1" '{ v[NR] = $1; c[NR] = $2; n += $2 } END {
        if (n == 0) { print "n/a"; exit }
        rank = int(q * n + 0.5); if (rank < 1) rank = 1; if (rank > n) rank = n
        for (i = 1; i <= NR; i++) { seen += c[i]; if (seen >= rank) { printf "%.2f\n", v[i] / 1000; exit } }
    }'
}
produced() { fields sum produced "$1" "$WORK"/producer*.out; }
reset_logs() { rm -f "$WORK"/client.*.log "$WORK"/latency.*.hist; }
consumer_list() { # PREFIX COUNT
    local i out=""
    for i in $(seq 0 $(($2 - 1))); do out+="$1$i,"; done
    echo "${out%,}"
}
per() { awk -v a="$1" -v b="$2" -v s="${3:-1}" 'BEGIN { if (b == 0) print "n/a"; else printf "%.2f\n", a * s / b }'; }
per_us() { per "$1" "$2" $((1000000 / CLK_TCK)); } # CPU TICKS COUNT: microseconds of CPU per item
# cpu_results SCENARIO LABEL TARGET COUNT "U0 S0" "U1 S1": CPU per item over
# a window, then its user / system split.
cpu_results() {
    local u0 s0 u1 s1
    read -r u0 s0 <<<"$5"
    read -r u1 s1 <<<"$6"
    result "$1" "$2" "$(per_us $((u1 + s1 - u0 - s0)) "$4")" "$3"
    result "$1" "  of which user / system (us)" "$(per_us $((u1 - u0)) "$4") / $(per_us $((s1 - s0)) "$4")" "-"
}
per_second() { awk -v n="$1" -v ns="$2" 'BEGIN { printf "%.0f\n", n / (ns / 1e9) }'; } # COUNT NANOSECONDS
larger() { awk -v a="$1" -v b="$2" 'BEGIN { print (a > b) ? a : b }'; }

# The scenarios' loads, shared with the nodejs scenario.
# fanout_load RATE SECONDS: RATE single-row transactions a second for consumer fan0.
fanout_load() {
    "$PRODUCER" --db "$DATABASE_URL" --rate "$1" --rows-per-tx 1 --consumers 1 --prefix fan \
        --duration "$2" >"$WORK/producer.out"
}
# latency_load SESSIONS RATE SECONDS: two producers, single-row transactions,
# RATE in all, spread over consumers l0 .. l<SESSIONS - 1>.
latency_load() {
    background "$PRODUCER" --db "$DATABASE_URL" --rate $(($2 / 2)) --rows-per-tx 1 --consumers "$1" \
        --prefix l --duration "$3" >"$WORK/producer.0.out"
    local p0=$LAST_PID
    "$PRODUCER" --db "$DATABASE_URL" --rate $(($2 / 2)) --rows-per-tx 1 --consumers "$1" \
        --prefix l --offset 1 --duration "$3" >"$WORK/producer.1.out"
    wait "$p0" || fail "a producer failed"
    forget_pid "$p0"
}

# ---- scenarios ------------------------------------------------------------------

fanout() {
    local sessions rate=10 seconds
    sessions=$(size 5000 50)
    seconds=$(size 20 2)
    service_start
    reset_logs
    clients 2 $((sessions / 2)) 1 --consumer fan0
    wait_streams "$sessions"
    sleep 1
    local d0 c0 b0
    c0=$(cpu_split)
    d0=$(metric event_piper_events_delivered_total)
    b0=$(metric event_piper_bytes_written_total)
    fanout_load "$rate" "$seconds"
    sleep 1
    local d1 c1 b1 deliveries
    c1=$(cpu_split)
    d1=$(metric event_piper_events_delivered_total)
    b1=$(metric event_piper_bytes_written_total)
    deliveries=$((d1 - d0))
    stop_clients
    service_stop
    result fanout "deliveries ($sessions streams x $rate events/s x ${seconds}s)" "$deliveries" \
        "$((sessions * rate * seconds))"
    cpu_results fanout "server CPU per delivery (us)" "<= 4" "$deliveries" "$c0" "$c1"
    result fanout "latency p50 / p99 (ms), whole fan-out" \
        "$(quantile 0.5) / $(quantile 0.99)" "-"
    # The same writes with no service around them: one sendmsg() of the
    # delivery's average size (plus the chunk framing) to as many loopback
    # sockets, at the same rate. The service makes one such call per delivery.
    local bytes floor
    bytes=$(( (b1 - b0) / (deliveries > 0 ? deliveries : 1) + 6 ))
    floor=$("$SEND_FLOOR" --sockets "$sessions" --rounds "$(size 50 5)" --interval-ms $((1000 / rate)) \
        --bytes "$bytes")
    result fanout "kernel floor: bare sendmsg() of $bytes bytes, same shape (us)" \
        "$(fields sum floor per_send_us <(echo "$floor"))" "-"
}

# idle_rss_per_stream PID IDLE COUNT_CMD CLIENT_ARGS...: the RSS a freshly
# started reference server (PID) adds per stream once IDLE idle streams on 100
# consumers are open (COUNT_CMD prints how many it holds), in KIB_PER_STREAM.
KIB_PER_STREAM=""
idle_rss_per_stream() {
    local pid=$1 idle=$2 count=$3 base rss
    shift 3
    sleep 1
    base=$(rss_kib "$pid")
    reset_logs
    clients 2 $((idle / 2)) 10 --consumers "$(consumer_list m 100)" "$@"
    wait_output "$idle" 60 "open streams" "$count"
    sleep 2
    rss=$(rss_kib "$pid")
    stop_clients
    KIB_PER_STREAM=$(per $((rss - base)) "$idle")
}

# The issue's reference figure, measured side by side instead of quoted: Nchan
# (nginx's pub/sub module, one worker, memory store) in the fan-out's shape,
# 5,000 EventSource streams on one channel and events of the same payload
# published over HTTP at the same rate. Its cost is the worker's CPU.
NCHAN_MODULE=/usr/lib/nginx/modules/ngx_nchan_module.so
NCHAN_MASTER=""
NCHAN_WORKER=""
NCHAN_CTL=0 # plain HTTP/1.1 port of the publisher and the status page
# nchan_start [LISTEN_OPTIONS]: subscribers on PORT, with nginx's listen
# options (" http2" for prior-knowledge h2c, " ssl", " ssl http2"; TLS with
# the run's self-signed certificate, see tls_files).
nchan_start() {
    local dir=$WORK/nchan listen=${1:-} tls=""
    mkdir -p "$dir"
    PORT=$(free_port)
    NCHAN_CTL=$(free_port)
    case "$listen" in *ssl*) tls="ssl_certificate $TLS_CERT; ssl_certificate_key $TLS_KEY;" ;; esac
    sed -e "s|@MODULE@|$NCHAN_MODULE|; s|@DIR@|$dir|g; s|@PORT@|$PORT|; s|@CTL@|$NCHAN_CTL|" \
        -e "s|@LISTEN@|$listen|; s|@TLS@|$tls|" "$ROOT/bench/nchan/nginx.conf.in" >"$dir/nginx.conf"
    background nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/out.log" 2>&1
    NCHAN_MASTER=$LAST_PID
    wait_listening "nginx with Nchan" "$NCHAN_MASTER" "http://127.0.0.1:$NCHAN_CTL/status" 10 \
        "$dir/out.log" "$dir/error.log"
    # The master forks the worker before it listens, so an answer means a worker.
    NCHAN_WORKER=$(pgrep -P "$NCHAN_MASTER" | head -1) || fail "nginx answers but has no worker"
}
nchan_stop() {
    stop_quietly "$NCHAN_MASTER"
    NCHAN_MASTER=""
    NCHAN_WORKER=""
}
nchan_subscribers() { curl -fs "http://127.0.0.1:$NCHAN_CTL/status" | awk '$1 == "subscribers:" { print $2 }'; }
nchan_publish() { python3 "$ROOT/bench/nchan/publish.py" "$NCHAN_CTL" "$@"; } # RATE SECONDS PAD
nchan() {
    local sessions rate=10 seconds
    sessions=$(size 5000 50)
    seconds=$(size 20 2)
    if ! command -v nginx >/dev/null || ! command -v pgrep >/dev/null || [ ! -f "$NCHAN_MODULE" ]; then
        fail "the nchan scenario needs nginx-light, libnginx-mod-nchan and procps (make bench installs them)"
    fi
    nchan_start
    reset_logs
    clients 2 $((sessions / 2)) 1 --consumer fan0 --foreign-ids
    wait_output "$sessions" 60 "Nchan subscribers" nchan_subscribers
    sleep 1
    local c0 c1 deliveries version
    c0=$(cpu_split "$NCHAN_WORKER")
    nchan_publish "$rate" "$seconds" 100
    sleep 1
    c1=$(cpu_split "$NCHAN_WORKER")
    stop_clients
    nchan_stop
    deliveries=$(totals events)
    version=$(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null | sed 's/^[0-9]*://; s/+.*//')
    result nchan "deliveries ($sessions streams x $rate events/s x ${seconds}s)" "$deliveries" \
        "$((sessions * rate * seconds))"
    cpu_results nchan "Nchan $version, 1 worker: CPU per delivery (us)" "above fanout's" "$deliveries" \
        "$c0" "$c1"
    result nchan "latency p50 / p99 (ms), whole fan-out (from the publish)" \
        "$(quantile 0.5) / $(quantile 0.99)" "-"
    nchan_memory
}
# The memory scenario's first measure, served by Nchan: the worker's RSS
# (its share of the channel store's shared memory included) per idle stream.
nchan_memory() {
    local idle
    idle=$(size 10000 100)
    nchan_start
    idle_rss_per_stream "$NCHAN_WORKER" "$idle" nchan_subscribers --foreign-ids
    nchan_stop
    result nchan "Nchan: RSS per idle stream at $idle streams (KiB)" "$KIB_PER_STREAM" "above memory's"
}

# The other reference, side by side: the idiomatic Node.js server of
# bench/node-reference (pg + http) on the same database, trigger, producers
# and clients, in the fan-out's, the idle memory's and the latency's shapes.
NODE_DIR=$ROOT/bench/node-reference
NODE_PID=""
node_server() { cd "$NODE_DIR" && exec env PORT="$PORT" node server.js; }
node_start() {
    PORT=$(free_port)
    background node_server >"$WORK/node.log" 2>&1
    NODE_PID=$LAST_PID
    wait_listening "the Node.js reference" "$NODE_PID" "http://127.0.0.1:$PORT/status" 10 "$WORK/node.log"
}
node_stop() {
    stop_quietly "$NODE_PID"
    NODE_PID=""
}
node_streams() { curl -fs "http://127.0.0.1:$PORT/status" | tr -cd '0-9'; }
nodejs() {
    if ! command -v node >/dev/null || [ ! -f "$NODE_DIR/node_modules/pg/package.json" ]; then
        fail "the nodejs scenario needs Node.js and bench/node-reference/node_modules (make bench installs them)"
    fi
    local version sessions idle rate seconds c0 c1 t0 t1 deliveries received
    version=$(node --version)
    # Fan-out: 5,000 streams of one consumer, 10 events/s.
    sessions=$(size 5000 50)
    seconds=$(size 20 2)
    node_start
    reset_logs
    clients 2 $((sessions / 2)) 1 --consumer fan0
    wait_output "$sessions" 60 "Node.js streams" node_streams
    sleep 1
    c0=$(cpu_split "$NODE_PID")
    fanout_load 10 "$seconds"
    sleep 1
    c1=$(cpu_split "$NODE_PID")
    stop_clients
    node_stop
    deliveries=$(totals events)
    result nodejs "deliveries ($sessions streams x 10 events/s x ${seconds}s)" "$deliveries" \
        "$((sessions * 10 * seconds))"
    cpu_results nodejs "Node.js $version: CPU per delivery (us)" "above fanout's" "$deliveries" \
        "$c0" "$c1"
    # Idle memory, on a fresh process.
    idle=$(size 10000 100)
    node_start
    idle_rss_per_stream "$NODE_PID" "$idle" node_streams
    node_stop
    result nodejs "Node.js: RSS per idle stream at $idle streams (KiB)" "$KIB_PER_STREAM" "above memory's"
    # Latency: 1,000 streams on 1,000 consumers, 2,000 events/s.
    sessions=$(size 1000 20)
    rate=$(size 2000 100)
    seconds=$(size 10 2)
    node_start
    reset_logs
    rm -f "$WORK"/producer*.out # the fan-out's rows are not this part's
    clients 2 $((sessions / 2)) 20 --consumers "$(consumer_list l "$sessions")"
    wait_output "$sessions" 60 "Node.js streams" node_streams
    sleep 1
    t0=$(cpu_ticks "$NODE_PID")
    latency_load "$sessions" "$rate" "$seconds"
    sleep 2
    t1=$(cpu_ticks "$NODE_PID")
    stop_clients
    node_stop
    received=$(totals events)
    result nodejs "Node.js: events produced / received at $rate events/s" "$(produced rows) / $received" "-"
    result nodejs "Node.js: INSERT-to-client p50 / p99 (ms), all events" "$(quantile 0.5) / $(quantile 0.99)" \
        "above latency's"
    result nodejs "Node.js: CPU per event (us)" "$(per_us $((t1 - t0)) "$received")" "-"
}

memory() {
    local idle total each base rss
    idle=$(size 10000 100)
    total=$(size 19000 190)
    service_start
    sleep 1
    base=$(rss_kib)
    reset_logs
    clients 2 $((idle / 2)) 10 --consumers "$(consumer_list m 100)" --count 1 --timeout 120
    wait_streams "$idle"
    sleep 2
    rss=$(rss_kib)
    local rss_idle=$rss
    result memory "RSS per idle stream at $idle streams (KiB)" "$(per $((rss - base)) "$idle")" "<= 4"
    each=$(( (total - idle) / 2 ))
    clients 2 "$each" 12 --consumers "$(consumer_list m 100)" --count 1 --timeout 120
    wait_streams $((idle + 2 * each))
    sleep 2
    rss=$(rss_kib)
    result memory "streams open at once" "$(metric event_piper_sessions_open)" "19000"
    result memory "RSS at $((idle + 2 * each)) streams (MiB)" "$(per "$rss" 1024)" "bounded"
    # Less sensitive to the start-up baseline than the line above it.
    result memory "  RSS per stream added from $idle to $((idle + 2 * each)) (KiB)" \
        "$(per $((rss - rss_idle)) $((2 * each)))" "<= 4"
    # Everyone live: one event per consumer; each client exits 0 once each
    # of its streams has one.
    sql "insert into events (type, subscriber, payload)
         select 'ping', 'm' || c, '{}' from generate_series(0, 99) c order by 1" >/dev/null
    wait_clients
    result memory "client processes whose every stream got the event" "$((4 - CLIENTS_FAILED)) of 4" "4 of 4"
    service_stop
}

latency() {
    local sessions rate seconds
    sessions=$(size 1000 20)
    rate=$(size 2000 100)
    seconds=$(size 10 2)
    service_start
    reset_logs
    clients 2 $((sessions / 2)) 20 --consumers "$(consumer_list l "$sessions")"
    wait_streams "$sessions"
    sleep 1
    local t0 t1
    t0=$(cpu_ticks)
    latency_load "$sessions" "$rate" "$seconds"
    sleep 2
    t1=$(cpu_ticks)
    stop_clients
    local produced received
    produced=$(produced rows)
    received=$(totals events)
    result latency "events produced / received" "$produced / $received" "no loss"
    result latency "INSERT-to-client p50 (ms), all events" "$(quantile 0.5)" "<= 0.3"
    result latency "INSERT-to-client p99 (ms), all events" "$(quantile 0.99)" "<= 1.5"
    result latency "  p99 of the worse of the 2 client processes (ms)" "$(per "$(worst p99_us)" 1000)" "-"
    result latency "INSERT-to-client p99.9 / max (ms)" "$(quantile 0.999) / $(quantile 1)" "-"
    result latency "server CPU per event (us)" "$(per_us $((t1 - t0)) "$received")" "-"
    service_stop
}

# load PREFIX CONSUMERS ROWS_EACH: rows inserted without notifications (the
# service is not running), ids in order, payloads like the producer's.
load() {
    sql "alter table events disable trigger events_notify;
         insert into events (type, subscriber, payload)
         select 'history', '$1' || c,
                jsonb_build_object('t', 1700000000000000 + n, 'pad', repeat('x', 80))
         from generate_series(0, $(($2 - 1))) c, generate_series(1, $3) n order by n, c;
         alter table events enable trigger events_notify;" >/dev/null
}

replay() {
    local rows clients_n per_client
    rows=$(size 1000000 10000)
    clients_n=$(size 1000 10)
    per_client=$(size 10000 100)
    load r 1 "$rows"
    load q 100 "$per_client"
    sql "vacuum analyze events" >/dev/null
    service_start
    sleep 0.5
    local base max=0 rss start end
    base=$(rss_kib)
    reset_logs
    start=$(date +%s%N)
    background "$SSE_CLIENT" --port "$PORT" --consumer r0 --last-event-id 0 --count "$rows" --timeout 300 \
        --quiet --latency 2>"$WORK/client.r.log"
    local pid=$LAST_PID
    while kill -0 "$pid" 2>/dev/null; do
        rss=$(rss_kib)
        [ "$rss" -gt "$max" ] && max=$rss
        sleep 0.2
    done
    end=$(date +%s%N)
    wait "$pid" || fail "the replaying client failed: $(tail -3 "$WORK/client.r.log")"
    forget_pid "$pid"
    result replay "rows/s, $rows rows to one client" \
        "$(per_second "$rows" $((end - start)))" ">= 500000"
    result replay "RSS growth during that replay (MiB)" "$(per $((max - base)) 1024)" "flat"

    reset_logs
    local pool_max=0 pool waiting_max=0 waiting
    start=$(date +%s%N)
    clients 2 $((clients_n / 2)) 30 --consumers "$(consumer_list q 100)" --last-event-id 0 \
        --count "$per_client" --close-when-done --timeout 300
    while any_running "${CLIENT_PIDS[@]}"; do
        pool=$(metric event_piper_replay_pool_connections)
        waiting=$(metric event_piper_replay_pool_waiting)
        [ "${pool:-0}" -gt "$pool_max" ] && pool_max=$pool
        [ "${waiting:-0}" -gt "$waiting_max" ] && waiting_max=$waiting
        sleep 0.2
    done
    end=$(date +%s%N)
    wait_clients
    [ "$CLIENTS_FAILED" = 0 ] || fail "$CLIENTS_FAILED replaying client(s) failed"
    result replay "$clients_n clients x $per_client rows: seconds" \
        "$(awk -v ns=$((end - start)) 'BEGIN { printf "%.1f\n", ns / 1e9 }')" "-"
    result replay "  rows/s over all clients" \
        "$(per_second $((clients_n * per_client)) $((end - start)))" "-"
    result replay "  pool connections at most (REPLAY_POOL_SIZE 4) / replays waiting at most" \
        "$pool_max / $waiting_max" "<= 4"
    service_stop
}

ingest() {
    local writers rate seconds
    writers=$(size 4 1)
    rate=$(size 100000 2000)
    seconds=$(size 10 1)
    service_start
    local r0 k qmax=0 q pid
    local -a producers=()
    r0=$(metric event_piper_events_received_total)
    for k in $(seq 0 $((writers - 1))); do
        background "$PRODUCER" --db "$DATABASE_URL" --rate $((rate / writers)) --rows-per-tx 100 \
            --consumers 1000 --prefix i --offset $((k * 250)) --duration "$seconds" >"$WORK/producer.$k.out"
        producers+=("$LAST_PID")
    done
    while any_running "${producers[@]}"; do
        q=$(sql "select pg_notification_queue_usage()")
        qmax=$(larger "$q" "$qmax")
        sleep 0.5
    done
    for pid in "${producers[@]}"; do
        wait "$pid" || fail "a producer failed"
        forget_pid "$pid"
    done
    local produced received
    produced=$(produced rows)
    # Until the service has received every row's notification; 10 s at most,
    # as a shortfall is what the row below reports.
    within 10 metric_is "$SCENARIO" event_piper_events_received_total -ge $((r0 + produced)) || true
    received=$(( $(metric event_piper_events_received_total) - r0 ))
    result ingest "rows/s reached by $writers writers (100 rows/tx, $rate offered)" \
        "$(produced rate)" ">= 100000"
    result ingest "rows produced / notifications received" "$produced / $received" "equal"
    result ingest "pg_notification_queue_usage() at most" "$qmax" "~0"
    # The ceiling: the same writers offered three times the rate.
    sql "truncate events" >/dev/null
    rm -f "$WORK"/producer*.out
    r0=$(metric event_piper_events_received_total)
    producers=()
    for k in $(seq 0 $((writers - 1))); do
        background "$PRODUCER" --db "$DATABASE_URL" --rate $((3 * rate / writers)) --rows-per-tx 100 \
            --consumers 1000 --prefix i --offset $((k * 250)) --duration "$seconds" >"$WORK/producer.$k.out"
        producers+=("$LAST_PID")
    done
    for pid in "${producers[@]}"; do
        wait "$pid" || fail "a producer failed"
        forget_pid "$pid"
    done
    produced=$(produced rows)
    within 10 metric_is "$SCENARIO" event_piper_events_received_total -ge $((r0 + produced)) || true
    received=$(( $(metric event_piper_events_received_total) - r0 ))
    result ingest "  ceiling: rows/s reached with $((3 * rate)) offered" "$(produced rate)" "-"
    result ingest "  rows produced / notifications received" "$produced / $received" "equal"
    service_stop
}

overload() {
    local sessions stuck rate seconds
    sessions=$(size 5000 50)
    stuck=$(size 100 2)
    rate=$(size 200 20)
    seconds=$(size 30 2)
    # Tighter slow-consumer limits than the defaults (1 MiB for 10 s) and a
    # fixed kernel send buffer, so that stuck clients are cut within the run.
    local -a limits
    read -r -a limits <<<"${OVERLOAD_LIMITS:-SESSION_BUFFER_SOFT_BYTES=64k SESSION_BUFFER_SOFT_SECONDS=2 SESSION_SOCKET_BUFFER_BYTES=64k}"
    service_start "${limits[@]}"
    reset_logs
    clients 2 $(((sessions - stuck) / 2)) 40 --consumer o0 --reconnect
    clients 1 "$stuck" 42 --consumer o0 --stall
    wait_streams "$sessions"
    local base rss max=0 probe worst_probe=0 q qmax=0 d0 d1 t0 t1
    base=$(rss_kib)
    d0=$(metric event_piper_events_delivered_total)
    t0=$(date +%s%N)
    background "$PRODUCER" --db "$DATABASE_URL" --rate "$rate" --rows-per-tx 1 --consumers 1 --prefix o \
        --duration "$seconds" --pad 1000 >"$WORK/producer.out"
    local p=$LAST_PID
    while kill -0 "$p" 2>/dev/null; do
        rss=$(rss_kib)
        [ "$rss" -gt "$max" ] && max=$rss
        q=$(sql "select pg_notification_queue_usage()")
        qmax=$(larger "$q" "$qmax")
        probe=$(curl -s -o /dev/null -w '%{time_total}' --max-time 10 "$(piper_url "$SCENARIO" /healthz)" || echo 10)
        worst_probe=$(larger "$probe" "$worst_probe")
        sleep 0.5
    done
    wait "$p" || fail "the producer failed"
    forget_pid "$p"
    d1=$(metric event_piper_events_delivered_total)
    t1=$(date +%s%N)
    result overload "offered" "$(produced rate) events/s (1.1 KB) x $sessions streams" "-"
    result overload "deliveries/s reached" "$(per_second $((d1 - d0)) $((t1 - t0)))" "-"
    result overload "pg_notification_queue_usage() at most (backlog left in PostgreSQL)" "$qmax" "-"
    result overload "RSS growth at most (MiB)" "$(per $((max - base)) 1024)" "bounded"
    result overload "streams cut as slow consumers" \
        "$(metric 'event_piper_sessions_closed_total{reason="slow_consumer"}')" \
        ">= $stuck"
    result overload "slowest /healthz answer during overload (s)" "$worst_probe" "never stalls"
    result overload "listener reconnects (a stalled loop misses its ping deadline)" \
        "$(metric event_piper_listener_reconnects_total)" "0"
    stop_clients
    service_stop
}

# ---- transports (issue 16) ------------------------------------------------------
#
# The fan-out's load (one consumer, 10 single-row events/s for 20 s) over
# HTTP/2, TLS and WebSocket, served by the service and, where it speaks the
# transport, by Nchan. The clients are build/bench/stream-load processes
# (the same small reader for every transport, so its cost does not differ
# between rows); server CPU is divided by the service's
# event_piper_events_delivered_total delta (Nchan's by what its clients
# received).

TLS_CERT=""
TLS_KEY=""
# tls_files: a certificate for 127.0.0.1 signed by a throwaway CA (tests/lib.sh's
# tls_make_cert: ECDSA P-256, which curl then trusts), once per run.
tls_files() {
    [ -z "$TLS_CERT" ] || return 0
    tls_make_cert "$WORK/tls"
    TLS_CERT=$WORK/tls/server.pem
    TLS_KEY=$WORK/tls/server.key
}
# loaders N CONNECTIONS_EACH FIRST_IP_OCTET ARGS...: N stream-load processes,
# each on its own 20 source addresses; their reports are client logs.
loaders() {
    local n=$1 each=$2 octet=$3 k
    shift 3
    for k in $(seq 0 $((n - 1))); do
        background "$STREAM_LOAD" --port "$PORT" --connections "$each" \
            --source-ips "127.0.$((octet + k)).1-127.0.$((octet + k)).20" "$@" 2>"$WORK/client.$octet.$k.log"
        CLIENT_PIDS+=("$LAST_PID")
    done
}
# The shape of every transport fan-out: streams, connections per loader.
FAN_STREAMS=0
fan_shape() { # PER_CONNECTION: sets FAN_STREAMS, FAN_EACH (connections per loader, 2 loaders)
    local per=$1
    FAN_STREAMS=$(size 5000 100)
    FAN_EACH=$((FAN_STREAMS / 2 / per))
}
# piper_fanout LABEL TARGET STREAM_LOAD_ARGS...: the service (already started)
# gets FAN_STREAMS streams of consumer fan0 (FAN_CONSUMERS: of these consumer
# ids, fan0 among them) from 2 loaders, then the fan-out's load; adds the
# CPU-per-delivery rows.
FAN_CONSUMERS=fan0
piper_fanout() {
    local label=$1 target=$2 seconds c0 c1 d0 d1 deliveries
    shift 2
    seconds=$(size 20 2)
    reset_logs
    loaders 2 "$FAN_EACH" 1 --header "X-Consumer-Id: $FAN_CONSUMERS" "$@"
    wait_streams "$FAN_STREAMS"
    sleep 1
    c0=$(cpu_split)
    d0=$(metric event_piper_events_delivered_total)
    fanout_load 10 "$seconds"
    sleep 1
    c1=$(cpu_split)
    d1=$(metric event_piper_events_delivered_total)
    deliveries=$((d1 - d0))
    stop_clients
    cpu_results "$SCENARIO" "$label: server CPU per delivery (us)" "$target" "$deliveries" "$c0" "$c1"
    result "$SCENARIO" "  deliveries counted / received by the clients" "$deliveries / $(totals events)" \
        "$((FAN_STREAMS * 10 * seconds))"
}
# nchan_fanout LISTEN LABEL STREAM_LOAD_ARGS...: the same with Nchan.
nchan_fanout() {
    local listen=$1 label=$2 seconds c0 c1 deliveries
    shift 2
    seconds=$(size 20 2)
    nchan_start "$listen"
    reset_logs
    loaders 2 "$FAN_EACH" 1 --header "X-Consumer-Id: fan0" "$@"
    wait_output "$FAN_STREAMS" 60 "Nchan subscribers" nchan_subscribers
    sleep 1
    c0=$(cpu_split "$NCHAN_WORKER")
    nchan_publish 10 "$seconds" 100
    sleep 1
    c1=$(cpu_split "$NCHAN_WORKER")
    stop_clients
    nchan_stop
    deliveries=$(totals events)
    cpu_results "$SCENARIO" "Nchan, $label: worker CPU per delivery (us)" "-" "$deliveries" "$c0" "$c1"
    result "$SCENARIO" "  received by the clients" "$deliveries" "$((FAN_STREAMS * 10 * seconds))"
}
transports_ready() {
    if ! command -v nginx >/dev/null || ! command -v pgrep >/dev/null || [ ! -f "$NCHAN_MODULE" ]; then
        fail "the transport scenarios need nginx-light, libnginx-mod-nchan and procps (make bench installs them)"
    fi
}

h2() {
    transports_ready
    fan_shape 50
    service_start MAX_STREAMS_PER_IP=0
    piper_fanout "h2c, $((FAN_EACH * 2)) connections x 50 streams" "<= 2" --proto h2 --streams 50
    service_stop
    nchan_fanout " http2" "h2c, $((FAN_EACH * 2)) connections x 50 streams" --proto h2 --streams 50
}

# Streams of several consumers: the same HTTP/1.1 fan-out of fan0's events to
# streams that follow fan0 alone, fan0 and one quiet consumer, and fan0 and
# nine. Each delivery of a stream of several consumers formats its cursor
# and copies the frame (src/core/session.c), where one-consumer streams share
# the frame; this measures what that costs.
multi() {
    fan_shape 1
    service_start MAX_STREAMS_PER_IP=0
    local consumers
    for consumers in fan0 "fan0, q1" "fan0, q1, q2, q3, q4, q5, q6, q7, q8, q9"; do
        FAN_CONSUMERS=$consumers
        piper_fanout "HTTP/1.1, streams of $(($(tr -cd , <<<"$consumers" | wc -c) + 1)) consumer(s)" "-" \
            --proto h1
    done
    FAN_CONSUMERS=fan0
    service_stop
}

# Idle memory per HTTP/2 stream: the RSS a fresh service adds per stream,
# for two shapes: 100 connections x 100 streams (H2_MAX_CONCURRENT_STREAMS'
# default) and 10 x 1,000 (the setting raised).
h2memory() {
    local shape each per streams base rss
    for shape in "$(size 50 1)x100" "$(size 5 1)x$(size 1000 200)"; do
        each=${shape%x*} # connections per loader, 2 loaders
        per=${shape#*x}
        streams=$((2 * each * per))
        service_start MAX_STREAMS_PER_IP=0 H2_MAX_CONCURRENT_STREAMS="$per"
        sleep 1
        base=$(rss_kib)
        reset_logs
        loaders 2 "$each" 10 --header "X-Consumer-Id: m0" --proto h2 --streams "$per"
        wait_streams "$streams"
        sleep 2
        rss=$(rss_kib)
        stop_clients
        service_stop
        result h2memory "RSS per idle h2 stream, $((2 * each)) connections x $per streams (KiB)" \
            "$(per $((rss - base)) "$streams")" "<= 1.5"
    done
}

tls() {
    transports_ready
    tls_files
    service_start MAX_STREAMS_PER_IP=0 TLS_CERT_FILE="$TLS_CERT" TLS_KEY_FILE="$TLS_KEY"
    fan_shape 1
    piper_fanout "HTTP/1.1 over TLS, $FAN_STREAMS connections" "vs websocket's SSE row" --proto h1 --tls
    fan_shape 50
    piper_fanout "h2 over TLS, $((FAN_EACH * 2)) connections x 50 streams" "vs h2's" --proto h2 --streams 50 --tls
    service_stop
    fan_shape 1
    nchan_fanout " ssl" "HTTP/1.1 over TLS, $FAN_STREAMS connections" --proto h1 --tls
    fan_shape 50
    nchan_fanout " ssl http2" "h2 over TLS, $((FAN_EACH * 2)) connections x 50 streams" --proto h2 --streams 50 --tls
}

# WebSocket against SSE on the same load, same client program, one
# connection per stream; then idle memory per WebSocket stream.
websocket() {
    local idle base rss
    fan_shape 1
    service_start MAX_STREAMS_PER_IP=0
    piper_fanout "SSE over HTTP/1.1, $FAN_STREAMS connections (stream-load)" "-" --proto h1
    piper_fanout "WebSocket, $FAN_STREAMS connections" "within 10 % of SSE" --proto ws
    service_stop
    idle=$(size 10000 100)
    service_start MAX_STREAMS_PER_IP=0
    sleep 1
    base=$(rss_kib)
    reset_logs
    loaders 2 $((idle / 2)) 10 --header "X-Consumer-Id: m0" --proto ws
    wait_streams "$idle"
    sleep 2
    rss=$(rss_kib)
    stop_clients
    service_stop
    result websocket "RSS per idle WebSocket stream at $idle streams (KiB)" "$(per $((rss - base)) "$idle")" "-"
}

# ---- main -------------------------------------------------------------------

# PIPER_BIN_BEFORE=other/bin/event-piper: each scenario that runs only the
# service runs first with that binary (rows tagged "-before") and the schema
# next to it (PIPER_SCHEMA_BEFORE, default ../postgresql/schema.sql from the
# binary), then as usual: before and after, side by side in one run.
PIPER_BIN_AFTER=$PIPER_BIN
run_scenario() { # NAME [before]
    SCENARIO=$1
    if [ "${2:-}" = before ]; then
        SCENARIO=$1-before
        ROW_TAG=-before
        PIPER_BIN=$PIPER_BIN_BEFORE
        sql_file "${PIPER_SCHEMA_BEFORE:-$(dirname "$PIPER_BIN_BEFORE")/../postgresql/schema.sql}"
    fi
    log "---- $SCENARIO"
    sql "truncate events" >/dev/null
    rm -f "$WORK"/producer*.out # produced() reads this scenario's only
    "$1"
    if [ "${2:-}" = before ]; then
        ROW_TAG=""
        PIPER_BIN=$PIPER_BIN_AFTER
        sql_file "$ROOT/postgresql/schema.sql"
    fi
}
sql_file() { PGOPTIONS='-c client_min_messages=warning' psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f "$1" >/dev/null; }

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(fanout nchan nodejs memory latency replay ingest overload h2 h2memory tls websocket multi)
for s in "${scenarios[@]}"; do
    case "$s" in
        fanout | memory | latency | replay | ingest | overload) before=${PIPER_BIN_BEFORE:+before} ;;
        nchan | nodejs | h2 | h2memory | tls | websocket | multi) before="" ;;
        *) fail "unknown scenario $s" ;;
    esac
    [ -z "$before" ] || run_scenario "$s" before
    run_scenario "$s"
done

printf '\n%-15s | %-80s | %-24s | %s\n' scenario measure value target
printf '%s\n' "----------------+----------------------------------------------------------------------------------+--------------------------+-----------"
awk -F'\t' '{ printf "%-15s | %-80s | %-24s | %s\n", $1, $2, $3, $4 }' "$RESULTS"
printf '\nmachine: %s, %s CPUs, %s; service %s\n' "$(uname -r)" "$(nproc)" \
    "$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)" "$("$PIPER_BIN" --version 2>/dev/null || echo "$PIPER_BIN")"
[ -z "${PIPER_BIN_BEFORE:-}" ] || printf 'before: %s\n' "$("$PIPER_BIN_BEFORE" --version 2>/dev/null || echo "$PIPER_BIN_BEFORE")"
