#!/usr/bin/env bash
# Replay memory is bounded: 100 streams asking for the whole of a ~100 MB
# table (Last-Event-ID: 0) that never read a byte add < 128 MB to the
# process and are closed after WRITE_TIMEOUT_SECONDS as slow consumers,
# while the replay budget fills and replays wait for it; a well-behaved
# stream and /healthz are served throughout. Then a replay with live
# events piling up beyond HELD_EVENTS_MAX: counted as a held overflow, and
# the stream still gets every row exactly once, in order.
# SOCKET_BUFFER and REPLAY_BUFFER (default 64k and the service's default) set the instance's
# SESSION_SOCKET_BUFFER_BYTES and REPLAY_BUFFER_BYTES, to measure others.
source "$(dirname "$0")/../lib.sh"

ATTACK=(/usr/bin/python3 "$ROOT/tests/tools/attack.py")
# ASan's quarantine keeps freed memory (256 MB by default): kept small so
# that RSS measures what the service holds.
export ASAN_OPTIONS="$ASAN_OPTIONS:quarantine_size_mb=4"
STREAMS=100

rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$(piper_pid "$1")/status"; }
# Kernel memory of all TCP sockets on the machine, in KiB (pages of 4 KiB).
tcp_kernel_kb() { awk '$1 == "TCP:" { for (i = 2; i < NF; i++) if ($i == "mem") print $(i + 1) * 4 }' /proc/net/sockstat; }

pg_start
# ~100 MB of rows for the attackers' consumer, ~1 KB of payload each, and a
# few MB for the slow reader of the second part; inserted before the service
# starts, so it has no notifications to confirm.
sql "insert into events (type, subscriber, payload)
     select 'big', 'big', jsonb_build_object('n', n, 'pad', repeat('x', 1000))
     from generate_series(1, 100000) n" >/dev/null
sql "insert into events (type, subscriber, payload)
     select 'slow', 'slow', jsonb_build_object('n', n, 'pad', repeat('y', 1000))
     from generate_series(1, 4000) n" >/dev/null
log "table: $(sql "select pg_size_pretty(pg_total_relation_size('events'))")"

piper_start a WRITE_TIMEOUT_SECONDS=5 HELD_EVENTS_MAX=16 HEARTBEAT_SECONDS=1 \
    SESSION_SOCKET_BUFFER_BYTES="${SOCKET_BUFFER:-64k}" ${REPLAY_BUFFER:+REPLAY_BUFFER_BYTES=$REPLAY_BUFFER}
piper_wait_ready a
url=$(piper_url a)

background curl -sN -o "$WORK/good" -H 'X-Consumer-Id: good' "$url/events"
wait_log a 'msg="session opened".*consumer=good' 10
background bash -c "while :; do curl -s -o /dev/null -w '%{http_code}\n' --max-time 5 '$url/healthz' >>'$WORK/health'; sleep 0.2; done"

# ---- 100 non-reading replays ---------------------------------------------------
rss_before=$(rss_kb a)
kernel_before=$(tcp_kernel_kb)
closed_before=$(piper_metric a 'event_piper_sessions_closed_total{reason="slow_consumer"}')
: >"$WORK/ready"
background "${ATTACK[@]}" hold "$(piper_port a)" "$STREAMS" 40 "$WORK/ready" >"$WORK/hold"
holder=$LAST_PID
wait_for "the $STREAMS streams to be sent" 20 test -s "$WORK/ready"
rss_peak=$rss_before kernel_peak=$kernel_before budget_peak=0 waiting_peak=0 n=0
while ! exited "$holder"; do
    r=$(rss_kb a)
    [ "$r" -le "$rss_peak" ] || rss_peak=$r
    k=$(tcp_kernel_kb)
    [ "$k" -le "$kernel_peak" ] || kernel_peak=$k
    b=$(piper_metric_now a event_piper_replay_budget_bytes || echo 0)
    [ "${b%.*}" -le "$budget_peak" ] || budget_peak=${b%.*}
    w=$(piper_metric_now a event_piper_replay_budget_waiting || echo 0)
    [ "$w" -le "$waiting_peak" ] || waiting_peak=$w
    # The well-behaved stream gets live rows meanwhile.
    n=$((n + 1))
    insert_event good tick "{\"n\": $n}" >/dev/null
    sleep 0.2
done
wait "$holder" || fail "the holding client failed"
forget_pid "$holder"
closed=$(wc -l <"$WORK/hold")
last=$(awk '{ print $3 }' "$WORK/hold" | sort -n | tail -1)
first=$(awk '{ print $3 }' "$WORK/hold" | sort -n | head -1)
added=$(((rss_peak - rss_before) / 1024))
log "$STREAMS non-reading replays: RSS +$added MB (peak $((rss_peak / 1024)) MB)," \
    "kernel TCP memory +$(((kernel_peak - kernel_before) / 1024)) MB," \
    "replay budget peak $((budget_peak / 1048576)) MB, up to $waiting_peak replays waiting for it," \
    "closed between $first and $last s after the last request"
[ "$closed" = "$STREAMS" ] || fail "only $closed of $STREAMS non-reading streams were closed within 40 s"
# Under AddressSanitizer every allocation carries redzones and shadow
# memory: the same bytes take up to twice the RSS.
limit=128
if ldd "$PIPER_BIN" 2>/dev/null | grep -q libasan; then limit=256; fi
[ "$added" -lt "$limit" ] || fail "$STREAMS non-reading replays added $added MB (limit $limit MB)"
[ "$budget_peak" -gt 0 ] || fail "event_piper_replay_budget_bytes never moved"
[ "$waiting_peak" -gt 0 ] || fail "event_piper_replay_budget_waiting never moved"
# Each was closed once its socket had taken nothing for 5 s: not before, and
# (those that waited for budget first) within a few periods more.
awk '$3 < 4.5 || $3 > 30 { bad++ } END { exit bad > 0 }' "$WORK/hold" ||
    fail "streams closed outside 4.5-30 s: $(awk '$3 < 4.5 || $3 > 30' "$WORK/hold" | head -3)"
wait_metric a 'event_piper_sessions_closed_total{reason="slow_consumer"}' = $((closed_before + STREAMS)) 10
wait_metric a event_piper_replay_budget_bytes = 0 10
wait_for "the good stream's row $n" 10 grep -q "^data: {\"n\":$n}" "$WORK/good"
[ "$(grep -c '^data: {"n":' "$WORK/good")" = "$n" ] || fail "the good stream missed rows during the attack"
grep -qv '^200$' "$WORK/health" && fail "/healthz failed during the attack: $(sort "$WORK/health" | uniq -c)"

# ---- live events held beyond HELD_EVENTS_MAX during a replay ---------------
# A stream replaying 4,000 rows of ~1 KB whose client (4 KiB receive buffer)
# reads nothing until 40 live rows for the same consumer have arrived
# (HELD_EVENTS_MAX=16), then reads everything.
overflows=$(piper_metric a event_piper_held_overflows_total)
cat >"$WORK/slow.py" <<'EOF2'
import os, socket, sys, time
port, work = int(sys.argv[1]), sys.argv[2]
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
# HTTP/1.0: the body unchunked, so that its lines can be read as they are.
s.sendall(b"GET /events HTTP/1.0\r\nHost: x\r\nX-Consumer-Id: slow\r\nLast-Event-ID: 0\r\n\r\n")
while not os.path.exists(work + "/read"):
    time.sleep(0.05)
data = b""
s.settimeout(20)
while b'data: {"live":40}' not in data:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.decode())
EOF2
background /usr/bin/python3 "$WORK/slow.py" "$(piper_port a)" "$WORK" >"$WORK/slow"
slow=$LAST_PID
wait_log a 'msg="session opened".*consumer=slow' 10
received=$(piper_metric a event_piper_events_received_total)
sql "insert into events (type, subscriber, payload)
     select 'live', 'slow', jsonb_build_object('live', i) from generate_series(1, 40) i" >/dev/null
wait_metric a event_piper_events_received_total -ge "$((received + 40))" 10
wait_metric a event_piper_ingest_backlog = 0 10
touch "$WORK/read"
wait_metric a event_piper_held_overflows_total -gt "$overflows" 30
wait_exit "$slow" 30 "the slow stream's last live row"
wait "$slow" || fail "the slow stream's client failed"
forget_pid "$slow"
grep '^id: ' "$WORK/slow" | cut -c5- >"$WORK/slow.ids"
sql "select id from events where subscriber = 'slow' order by id" >"$WORK/slow.expected"
assert_file_eq "$WORK/slow.expected" "$WORK/slow.ids" "the slow stream's ids (every row once, in order)"
log "held overflow: $(piper_metric a event_piper_held_overflows_total) counted, $(wc -l <"$WORK/slow.ids") rows delivered exactly"

piper_stop a 30
test_done
