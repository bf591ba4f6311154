#!/usr/bin/env bash
# Per-client limits: MAX_STREAMS_PER_IP and MAX_STREAMS_PER_CONSUMER answer
# 429 with Retry-After and error too_many_streams, and free up as streams
# close; other clients and consumers are served meanwhile. Then the same
# through a real haproxy with examples/haproxy/haproxy.cfg (send-proxy-v2)
# and PROXY_PROTOCOL=1: the limit applies to the client address the PROXY
# header carries (127.0.0.2 limited, 127.0.0.3 not), and a connection
# without a PROXY header is refused.
source "$(dirname "$0")/../lib.sh"

HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || fail "haproxy not found (Debian package haproxy; .ci/install-deps test installs it)"

# open_stream NAME URL CONSUMER [CURL ARGS...]: a stream in the background
# (its pid in LAST_PID) once the service logged it open.
open_stream() {
    local name=$1 url=$2 consumer=$3 offset
    shift 3
    offset=$(log_size "$name")
    background curl -sN -o /dev/null -H "X-Consumer-Id: $consumer" "$@" "$url"
    local pid=$LAST_PID
    wait_log "$name" "msg=\"session opened\".*consumer=$consumer " 10 "$offset"
    LAST_PID=$pid
}
# expect_429 URL CONSUMER [CURL ARGS...]
expect_429() {
    local url=$1 consumer=$2
    shift 2
    curl -s -D "$WORK/h" -o "$WORK/b" --max-time 5 -H "X-Consumer-Id: $consumer" "$@" "$url" || true
    assert_eq "HTTP/1.1 429 Too Many Requests" "$(head -1 "$WORK/h" | tr -d '\r')" "status for $consumer $*"
    grep -qi '^Retry-After: [0-9]' "$WORK/h" || fail "no Retry-After on the 429 for $consumer $*"
    assert_contains "$(cat "$WORK/b")" '"error":"too_many_streams"' "429 body for $consumer $*"
}

pg_start

# ---- direct ----------------------------------------------------------------
piper_start a MAX_STREAMS_PER_IP=3 MAX_STREAMS_PER_CONSUMER=2 HEARTBEAT_SECONDS=1
piper_wait_ready a
url=$(piper_url a /events)

# Per consumer: c1 may have 2 streams, from any address.
open_stream a "$url" c1
c1_first=$LAST_PID
open_stream a "$url" c1 --interface 127.0.0.2
expect_429 "$url" c1 --interface 127.0.0.3
# Per address: 127.0.0.1 has c1's first; two more, then a 429 for any
# consumer from it, while 127.0.0.3 is still served.
open_stream a "$url" c2
open_stream a "$url" c3
expect_429 "$url" c4
assert_eq 200 "$(http_status "$url" -H 'X-Consumer-Id: c4' --interface 127.0.0.3)" "c4 from 127.0.0.3"
assert_eq 2 "$(piper_metric a 'event_piper_requests_rejected_total{reason="too_many_streams"}')" \
    "429s counted as too_many_streams"
# Closing c1's first stream frees a place for c1 and for 127.0.0.1.
stop_quietly "$c1_first"
wait_log a 'msg="session closed".*consumer=c1 peer=127.0.0.1 ' 10
open_stream a "$url" c1
expect_429 "$url" c1 --interface 127.0.0.3
expect_429 "$url" c5
piper_stop a

# ---- behind haproxy, PROXY protocol v2 ------------------------------------------
piper_start p PROXY_PROTOCOL=1 MAX_STREAMS_PER_IP=2 HEARTBEAT_SECONDS=1
piper_wait_ready p
lb_port=$(free_port)
cfg="$WORK/haproxy.cfg"
# All three servers of the example are this one instance.
sed -e "s/^\([[:space:]]*bind\) :4000\$/\1 127.0.0.1:$lb_port/" \
    -e "s/ 127\.0\.0\.1:400[123]\$/ 127.0.0.1:$(piper_port p)/" \
    "$ROOT/examples/haproxy/haproxy.cfg" >"$cfg"
grep -q "send-proxy-v2" "$cfg" || fail "examples/haproxy/haproxy.cfg does not send the PROXY protocol"
[ "$(grep -c "127\.0\.0\.1:$(piper_port p)\$" "$cfg")" = 3 ] ||
    fail "examples/haproxy/haproxy.cfg no longer has the lines this test rewrites"
"$HAPROXY" -c -q -f "$cfg" || fail "haproxy refuses the configuration $cfg"
hap_log="$ARTIFACTS/$TEST_NAME.haproxy.log"
background "$HAPROXY" -f "$cfg" -db >"$hap_log" 2>&1
PIPER_LOGS["haproxy"]=$hap_log
lb="http://127.0.0.1:$lb_port/events"
wait_for "haproxy to answer" 10 curl -fs "http://127.0.0.1:$lb_port/readyz"

open_stream p "$lb" k1 --interface 127.0.0.2
open_stream p "$lb" k2 --interface 127.0.0.2
# The instance saw the clients, not haproxy.
[ "$(lines_matching "$(piper_log p)" 0 'msg="session opened".* peer=127\.0\.0\.2 ')" = 2 ] ||
    fail "the service did not take the client address from the PROXY header"
expect_429 "$lb" k3 --interface 127.0.0.2
open_stream p "$lb" k3 --interface 127.0.0.3
k3=$LAST_PID
insert_event k3 tick '{"n": 1}' >/dev/null
wait_metric p event_piper_events_delivered_total -ge 1 10
assert_eq 1 "$(piper_metric p 'event_piper_requests_rejected_total{reason="too_many_streams"}')" \
    "429s counted through haproxy"
# 127.0.0.2, 127.0.0.3, and 127.0.0.1 (this /metrics request, haproxy's
# health checks).
assert_eq 3 "$(piper_metric p event_piper_client_addresses)" "client addresses"
stop_quietly "$k3"

# A connection without a PROXY header is refused (closed without an answer),
# one with a header (v1 here, from curl) is served.
assert_eq 000 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$(piper_url p /healthz)" || true)" \
    "a request without a PROXY header"
assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 --haproxy-protocol "$(piper_url p /healthz)")" \
    "a request with a PROXY v1 header"
piper_running p || fail "the instance died"
piper_stop p
test_done
