#!/usr/bin/env bash
# TLS and HTTP/2 on the service's own port, with real clients: curl (https
# with a CA made here, --http2 over ALPN, --http2-prior-knowledge on the
# cleartext port), openssl s_client (TLS 1.1 refused, the certificate served
# after a SIGHUP), nghttp (50 streams on one connection; GOAWAY on SIGTERM)
# tests/tools/h2_streams.py (Python h2: RST_STREAM of one stream of
# several, one stream that reads nothing among streams that read) and
# haproxy terminating TLS in front of the cleartext port, speaking h2c to it
# (examples/haproxy/haproxy-tls-h2c.cfg).
source "$(dirname "$0")/../lib.sh"

command -v nghttp >/dev/null || fail "nghttp not found (Debian nghttp2-client)"
/usr/bin/python3 -c 'import h2' 2>/dev/null || fail "Python h2 not found (Debian python3-h2)"
H2_STREAMS=(/usr/bin/python3 "$ROOT/tests/tools/h2_streams.py")
SECRET="0123456789abcdef0123456789abcdef-test-secret"
printf 'sk_test_h2_0123456789abcdef  keyed\n' >"$WORK/keys"

pg_start
tls_make_cert "$WORK/tls1"
# The files the service reads, at start and again on SIGHUP.
mkdir -p "$WORK/live"
cp "$WORK/tls1/server.pem" "$WORK/tls1/server.key" "$WORK/live/"
CA1=$TLS_CA
piper_start tls TLS_CERT_FILE="$WORK/live/server.pem" TLS_KEY_FILE="$WORK/live/server.key"
# Small slow-consumer limits: a stream that takes nothing is cut after 64 KiB.
piper_start clear SESSION_BUFFER_SOFT_BYTES=16k SESSION_BUFFER_SOFT_SECONDS=1 \
    SESSION_BUFFER_HARD_BYTES=64k
piper_wait_ready tls
piper_wait_ready clear
port_tls=$(piper_port tls)
h2_open() { echo "event_piper_streams_open{transport=\"h2\"}"; }
h2_conns() { echo "event_piper_connections_open{transport=\"h2\"}"; }

# fingerprint: the SHA-256 fingerprint of the certificate a new TLS
# connection to the tls instance is shown.
fingerprint() {
    openssl s_client -connect "127.0.0.1:$port_tls" -servername localhost -showcerts </dev/null 2>/dev/null |
        openssl x509 -noout -fingerprint -sha256
}

# ---- TLS: verified by the test's CA, h2 and http/1.1 by ALPN ----
url=$(piper_url tls /healthz)
assert_eq "200 2" "$(curl -s -o /dev/null -w '%{http_code} %{http_version}' "$url")" "https with ALPN h2"
assert_eq "200 1.1" "$(curl -s -o /dev/null -w '%{http_code} %{http_version}' --http1.1 "$url")" \
    "https with ALPN http/1.1"
status=0
env -u CURL_CA_BUNDLE curl -s -o /dev/null "$url" || status=$?
[ "$status" = 60 ] || fail "a client without the test CA: curl status $status, not 60"

# ---- TLS 1.1 is refused, TLS 1.2 taken; failed handshakes are counted ----
failures=$(piper_metric tls event_piper_tls_handshake_failures_total)
if openssl s_client -connect "127.0.0.1:$port_tls" -tls1_1 -cipher 'DEFAULT@SECLEVEL=0' \
    </dev/null >"$WORK/tls11.out" 2>&1; then
    fail "a TLS 1.1 handshake succeeded"
fi
grep -q "alert protocol version" "$WORK/tls11.out" || fail "no protocol version alert for TLS 1.1: $(tail -3 "$WORK/tls11.out")"
wait_metric tls event_piper_tls_handshake_failures_total = $((failures + 1))
# Cleartext HTTP on the TLS port is a failed handshake too.
assert_eq 000 "$(http_code "http://127.0.0.1:$port_tls/healthz")" "cleartext HTTP on the TLS port"
wait_metric tls event_piper_tls_handshake_failures_total = $((failures + 2))
openssl s_client -connect "127.0.0.1:$port_tls" -tls1_2 -alpn h2 -CAfile "$CA1" </dev/null \
    >"$WORK/tls12.out" 2>&1 || fail "a TLS 1.2 handshake failed: $(tail -5 "$WORK/tls12.out")"
grep -q "ALPN protocol: h2" "$WORK/tls12.out" || fail "no ALPN h2 over TLS 1.2"
grep -q "Protocol *: TLSv1.2" "$WORK/tls12.out" || fail "not TLS 1.2: $(grep Protocol "$WORK/tls12.out")"
grep -q "Verify return code: 0 (ok)" "$WORK/tls12.out" || fail "TLS 1.2: the certificate did not verify"

# ---- SIGHUP with a new certificate: new handshakes see it, an open stream
# keeps receiving ----
background curl -s -N --http2 -H "X-Consumer-Id: hup" "$(piper_url tls /events)" >"$WORK/hup.out"
hup_pid=$LAST_PID
wait_file_lines "$WORK/hup.out" '^retry:' 1 15 "the stream opened before the reload"
wait_metric tls "$(h2_open)" = 1 15
old_fp=$(fingerprint)
assert_eq "$(openssl x509 -in "$WORK/tls1/server.pem" -noout -fingerprint -sha256)" "$old_fp" \
    "the certificate served at start"
tls_make_cert "$WORK/tls2" # a new CA and certificate; CURL_CA_BUNDLE now names the new CA
CA2=$TLS_CA
offset=$(log_size tls)
cp "$WORK/tls2/server.pem" "$WORK/live/server.pem.new"
cp "$WORK/tls2/server.key" "$WORK/live/server.key.new"
mv "$WORK/live/server.pem.new" "$WORK/live/server.pem"
mv "$WORK/live/server.key.new" "$WORK/live/server.key"
kill -HUP "$(piper_pid tls)"
wait_log tls 'msg="?reload: TLS certificate loaded' 10 "$offset"
new_fp=$(fingerprint)
assert_eq "$(openssl x509 -in "$WORK/tls2/server.pem" -noout -fingerprint -sha256)" "$new_fp" \
    "the certificate served after SIGHUP"
[ "$new_fp" != "$old_fp" ] || fail "the fingerprint did not change"
status=0
curl -s -o /dev/null --cacert "$CA1" "$url" || status=$?
[ "$status" = 60 ] || fail "a client trusting only the old CA: curl status $status, not 60"
assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' --cacert "$CA2" "$url")" "a client of the new CA"
id=$(insert_event hup insert '{"after": "reload"}')
wait_file_lines "$WORK/hup.out" "^id: $id\$" 1 15 "the event on the stream opened before the reload"
stop_quietly "$hup_pid"
wait_metric tls "$(h2_open)" = 0 15

# ---- curl --http2 (TLS) and --http2-prior-knowledge (h2c): replay from
# Last-Event-ID, then live ----
# h2_curl_stream NAME TAG CURL-FLAG: three rows, a stream resuming after the
# first, then a live row; the stream must hold rows 2, 3 and the live one.
h2_curl_stream() {
    local name=$1 tag=$2 flag=$3 consumer="c-$2" first id pid
    first=$(insert_event "$consumer" insert '{"n": 1}')
    insert_event "$consumer" insert '{"n": 2}' >/dev/null
    insert_event "$consumer" update '{"n": 3}' >/dev/null
    background curl -s -N "$flag" -D "$WORK/$tag.head" -H "X-Consumer-Id: $consumer" \
        -H "Last-Event-ID: $first" "$(piper_url "$name" /events)" >"$WORK/$tag.out"
    pid=$LAST_PID
    wait_file_lines "$WORK/$tag.out" '^id: ' 2 15 "the replayed rows over $tag"
    wait_metric "$name" "$(h2_open)" = 1 15
    id=$(insert_event "$consumer" insert '{"n": 4}')
    wait_file_lines "$WORK/$tag.out" "^id: $id\$" 1 15 "the live row over $tag"
    assert_eq "$(printf 'id: %s\n' $((first + 1)) $((first + 2)) "$id")" \
        "$(grep '^id: ' "$WORK/$tag.out")" "ids received over $tag"
    assert_eq 'data: {"n":3}' "$(grep -A2 "^id: $((first + 2))\$" "$WORK/$tag.out" | grep '^data:')" \
        "a replayed row over $tag"
    assert_contains "$(head -1 "$WORK/$tag.head")" "HTTP/2 200" "the status line over $tag"
    assert_contains "$(tr -d '\r' <"$WORK/$tag.head")" "content-type: text/event-stream" "$tag answer"
    stop_quietly "$pid"
    wait_metric "$name" "$(h2_open)" = 0 15
}
h2_curl_stream tls tls-h2 --http2
h2_curl_stream clear h2c --http2-prior-knowledge

# ---- every endpoint over h2 ----
for name in tls clear; do
    flag=--http2
    [ "$name" = tls ] || flag=--http2-prior-knowledge
    base=$(piper_url "$name")
    for path in /healthz /readyz /metrics; do
        assert_eq "200 2" "$(curl -s -o "$WORK/body" -w '%{http_code} %{http_version}' "$flag" "$base$path")" \
            "GET $path over h2 ($name)"
    done
    assert_contains "$(cat "$WORK/body")" "event_piper_connections_open{transport=\"h2\"}" "/metrics over h2"
    assert_eq "404 2" "$(curl -s -o "$WORK/body" -w '%{http_code} %{http_version}' "$flag" "$base/nowhere")" \
        "an unknown path over h2 ($name)"
    assert_contains "$(cat "$WORK/body")" '"error":"not_found"' "404 body over h2"
    code=$(curl -s -o "$WORK/body" -D "$WORK/head" -w '%{http_code}' "$flag" -X DELETE "$base/healthz")
    assert_eq 405 "$code" "DELETE /healthz over h2 ($name)"
    assert_contains "$(tr -d '\r' <"$WORK/head")" "allow: " "405 over h2 has an allow field"
    assert_eq 400 "$(curl -s -o "$WORK/body" -w '%{http_code}' "$flag" "$base/events")" \
        "/events without a consumer over h2 ($name)"
    assert_contains "$(cat "$WORK/body")" '"error":"missing_consumer_id"' "400 body over h2"
    assert_eq 204 "$(curl -s -o /dev/null -w '%{http_code}' "$flag" -X OPTIONS "$base/events")" \
        "OPTIONS /events over h2 ($name)"
done
# POST /auth/token over h2c, then a stream opened with the token it gave.
piper_start keyed JWT_HS256_SECRET="$SECRET" API_KEYS_FILE="$WORK/keys"
keyed=$(piper_url keyed)
code=$(curl -s -o "$WORK/token.json" -w '%{http_code} %{http_version}' --http2-prior-knowledge -X POST \
    -H "X-API-Key: sk_test_h2_0123456789abcdef" "$keyed/auth/token")
assert_eq "200 2" "$code" "POST /auth/token over h2c"
token=$(/usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' <"$WORK/token.json") ||
    fail "no token in $(cat "$WORK/token.json")"
assert_eq 401 "$(curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge -X POST "$keyed/auth/token")" \
    "POST /auth/token without a key over h2c"
stream_until "$WORK/keyed" '^retry:' 15 --http2-prior-knowledge -H "Authorization: Bearer $token" \
    -H "X-Consumer-Id: keyed" "$keyed/events" || fail "no stream with the issued token over h2c"
assert_eq 401 "$(http_status --http2-prior-knowledge -H "X-Consumer-Id: keyed" "$keyed/events")" \
    "a stream without a token over h2c"
piper_stop keyed

# ---- 50 streams on one connection (nghttp, TLS): one connection counted ----
conns_before=$(piper_metric tls "$(h2_conns)")
# nghttp prints the bodies (so each event once per stream); unbuffered, so
# that what arrived is in the file at once.
background stdbuf -o0 nghttp -m 50 -H "x-consumer-id: fan" "$(piper_url tls /events)" >"$WORK/nghttp.out" 2>&1
nghttp_pid=$LAST_PID
wait_metric tls "$(h2_open)" = 50 20
assert_eq $((conns_before + 1)) "$(piper_metric tls "$(h2_conns)")" "h2 connections with 50 streams open"
ids=()
for n in 1 2 3; do ids+=("$(insert_event fan insert "{\"n\": $n}")"); done
for id in "${ids[@]}"; do
    wait_file_lines "$WORK/nghttp.out" "^id: $id\$" 50 20 "event $id on the 50 streams"
done
assert_eq 150 "$(grep -c '^id: ' "$WORK/nghttp.out")" "events received on the 50 streams"
stop_quietly "$nghttp_pid"
wait_metric tls "$(h2_open)" = 0 15

# ---- RST_STREAM of one stream ends only that subscription ----
mkfifo "$WORK/rst.in"
# Opened read-write here, so that the tool's opening it for reading does not wait.
exec 7<>"$WORK/rst.in"
background "${H2_STREAMS[@]}" "$(piper_port clear)" rst 4 --commands "$WORK/rst.in" >"$WORK/rst.out" 2>"$WORK/rst.err"
rst_pid=$LAST_PID
wait_file_lines "$WORK/rst.out" '^open [0-3] 200$' 4 15 "4 streams on one connection"
wait_metric clear "$(h2_open)" = 4 15
gone=$(piper_metric clear 'event_piper_sessions_closed_total{reason="client_gone"}')
echo "reset 1" >&7
wait_metric clear "$(h2_open)" = 3 15
wait_metric clear 'event_piper_sessions_closed_total{reason="client_gone"}' = $((gone + 1))
assert_eq 1 "$(piper_metric clear "$(h2_conns)")" "h2 connections after one stream's reset"
id=$(insert_event rst insert '{"after": "reset"}')
wait_file_lines "$WORK/rst.out" "^event [023] $id\$" 3 15 "the event on the 3 streams left"
assert_eq 0 "$(lines_matching "$WORK/rst.out" 0 '^event 1 ')" "events on the reset stream"
echo quit >&7
exec 7>&-
wait_exit "$rst_pid" 10 "h2_streams.py to quit"
wait_metric clear "$(h2_open)" = 0 15

# ---- a stream that reads nothing does not hold up the others on its
# connection, and is cut by the slow-consumer limits ----
mkfifo "$WORK/slow.in"
# Opened read-write here, so that the tool's opening it for reading does not wait.
exec 7<>"$WORK/slow.in"
background "${H2_STREAMS[@]}" "$(piper_port clear)" slow 4 --window 4096 --slow 2 \
    --commands "$WORK/slow.in" >"$WORK/slow.out" 2>"$WORK/slow.err"
slow_pid=$LAST_PID
wait_file_lines "$WORK/slow.out" '^open [0-3] 200$' 4 15 "4 streams on one connection"
wait_metric clear "$(h2_open)" = 4 15
slow_before=$(piper_metric clear 'event_piper_sessions_closed_total{reason="slow_consumer"}')
# 40 rows of 4 KiB, committed one by one 50 ms apart (a pace the reading
# streams keep up with): the stream that reads nothing has a window of 4 KiB
# and a queue that may hold 64 KiB, so it is cut after about 16 of them.
for n in $(seq 1 40); do
    echo "insert into events (type, subscriber, payload) values ('bulk', 'slow', jsonb_build_object('n', $n, 'pad', repeat('x', 4096)));"
    echo "select pg_sleep(0.05);"
done >"$WORK/slow.sql"
psql "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -f "$WORK/slow.sql" >/dev/null || fail "cannot insert the rows"
last=$(sql "select max(id) from events where subscriber = 'slow'")
wait_file_lines "$WORK/slow.out" '^reset 2 8$' 1 20 "the server to reset the slow stream (CANCEL)"
wait_file_lines "$WORK/slow.out" "^event [013] $last\$" 3 20 "the last row on the 3 streams that read"
for i in 0 1 3; do
    assert_eq 40 "$(lines_matching "$WORK/slow.out" 0 "^event $i ")" "rows on reading stream $i"
done
wait_metric clear 'event_piper_sessions_closed_total{reason="slow_consumer"}' = $((slow_before + 1))
wait_metric clear "$(h2_open)" = 3 15
assert_eq 1 "$(piper_metric clear "$(h2_conns)")" "h2 connections after the slow stream's end"
echo quit >&7
exec 7>&-
wait_exit "$slow_pid" 10 "h2_streams.py to quit"

# ---- h2c behind a TLS-terminating balancer: examples/haproxy/haproxy-tls-h2c.cfg ----
HAPROXY=$(command -v haproxy || echo /usr/sbin/haproxy)
[ -x "$HAPROXY" ] || fail "haproxy not found (Debian package haproxy)"
cat "$WORK/tls2/server.pem" "$WORK/tls2/server.key" >"$WORK/site.pem"
hap_port=$(free_port)
sed -e "s|bind :443 ssl crt /etc/haproxy/site.pem|bind 127.0.0.1:$hap_port ssl crt $WORK/site.pem|" \
    -e "s|server piper1 127.0.0.1:4001 |server piper1 127.0.0.1:$(piper_port clear) |" \
    "$ROOT/examples/haproxy/haproxy-tls-h2c.cfg" >"$WORK/haproxy.cfg"
for line in "127.0.0.1:$hap_port ssl crt" ":$(piper_port clear) proto h2"; do
    grep -q "$line" "$WORK/haproxy.cfg" ||
        fail "examples/haproxy/haproxy-tls-h2c.cfg no longer has the lines this test rewrites"
done
"$HAPROXY" -c -q -f "$WORK/haproxy.cfg" || fail "haproxy refuses $WORK/haproxy.cfg"
background "$HAPROXY" -f "$WORK/haproxy.cfg" -db >"$ARTIFACTS/$TEST_NAME.haproxy.log" 2>&1
hap_pid=$LAST_PID
PIPER_LOGS["haproxy"]="$ARTIFACTS/$TEST_NAME.haproxy.log"
wait_http_status "https://127.0.0.1:$hap_port/readyz" 200 15 "haproxy to see the instance up"
background curl -s -N --http2 -D "$WORK/lb.head" -H "X-Consumer-Id: lb" "https://127.0.0.1:$hap_port/events" \
    >"$WORK/lb.out"
lb_pid=$LAST_PID
wait_metric clear "$(h2_open)" = 1 15
id=$(insert_event lb insert '{"via": "haproxy"}')
wait_file_lines "$WORK/lb.out" "^id: $id\$" 1 15 "the row through haproxy"
assert_contains "$(head -1 "$WORK/lb.head")" "HTTP/2 200" "the client's side of haproxy"
stop_quietly "$lb_pid" "$hap_pid"
wait_metric clear "$(h2_open)" = 0 15

# ---- SIGTERM: GOAWAY, then the open streams end and the process exits ----
background stdbuf -o0 nghttp -v -m 3 -H "x-consumer-id: drain" "$(piper_url clear /events)" >"$WORK/goaway.out" 2>&1
goaway_pid=$LAST_PID
wait_metric clear "$(h2_open)" = 3 15
piper_stop clear
wait_exit "$goaway_pid" 15 "nghttp to end after GOAWAY"
wait "$goaway_pid" || fail "nghttp ended with status $? after GOAWAY: $(tail -5 "$WORK/goaway.out")"
forget_pid "$goaway_pid"
grep -q 'recv GOAWAY frame' "$WORK/goaway.out" || fail "no GOAWAY received: $(tail -20 "$WORK/goaway.out")"
assert_contains "$(grep -A1 'recv GOAWAY frame' "$WORK/goaway.out")" "error_code=NO_ERROR" "GOAWAY's code"
assert_eq 3 "$(sed -n '/recv GOAWAY frame/,$p' "$WORK/goaway.out" | grep -c '; END_STREAM')" \
    "streams ended after GOAWAY"

piper_stop tls
test_done
