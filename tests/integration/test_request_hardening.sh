#!/usr/bin/env bash
# Issue 15's smaller items against the real service: control bytes in a
# header (400), MAX_HEADER_BYTES (431), MAX_BODY_BYTES (413), GET / without
# DEMO (404 demo_disabled), METRICS_TOKEN, SIGHUP reloading API_KEYS_FILE
# under an open stream (and surviving a broken file), a trailing comma in
# CORS_ORIGINS. An open stream is served throughout.
source "$(dirname "$0")/../lib.sh"

pg_start
printf 'sk_first_0123456789abcdef  alice\n' >"$WORK/keys"
piper_start a API_KEYS_FILE="$WORK/keys" MAX_HEADER_BYTES=2k MAX_BODY_BYTES=1k \
    CORS_ORIGINS="https://app.example," HEARTBEAT_SECONDS=1
piper_wait_ready a
port=$(piper_port a)
url=$(piper_url a)

background curl -sN -o "$WORK/stream" -H 'Authorization: Bearer sk_first_0123456789abcdef' "$url/events"
wait_log a 'msg="session opened".*consumer=alice' 10
stream_event() { # N: a row for alice, and the open stream receives it
    insert_event alice tick "{\"n\": $1}" >/dev/null
    wait_for "the open stream's event $1" 10 grep -q "^data: {\"n\":$1}" "$WORK/stream"
}
stream_event 1

# raw REQUEST: sends REQUEST (printf format) on a fresh connection, prints
# the answer's status line and body.
raw() {
    /usr/bin/python3 - "$port" "$1" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
s.settimeout(10)
data = b""
while True:
    try:
        chunk = s.recv(65536)
    except TimeoutError:
        data += b" (no close within 10 s)"
        break
    if not chunk:
        break
    data += chunk
head, _, body = data.partition(b"\r\n\r\n")
print(head.split(b"\r\n")[0].decode(), body.decode(errors="replace").strip())
EOF
}
# expect_error RAW_REQUEST STATUS CODE
expect_error() {
    local answer
    answer=$(raw "$1")
    assert_contains "$answer" "HTTP/1.1 $2 " "status for $1"
    assert_contains "$answer" "\"error\":\"$3\"" "error code for $1"
}

# ---- control bytes in a header ---------------------------------------------
for byte in '\x00' '\x01' '\x1b' '\x7f'; do
    expect_error "GET /events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk_first_0123456789abcdef\r\nX-Consumer-Id: ali${byte}ce\r\n\r\n" 400 bad_request
done
expect_error "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Note: a\x00b\r\n\r\n" 400 bad_request

# ---- sizes --------------------------------------------------------------------
pad=$(head -c 3000 /dev/zero | tr '\0' p)
expect_error "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: $pad\r\n\r\n" 431 header_too_large
body=$(head -c 2000 /dev/zero | tr '\0' b)
expect_error "POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 2000\r\n\r\n$body" 413 body_too_large
# Chunked, no Content-Length: cut as it arrives.
expect_error "POST /auth/token HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n$body\r\n0\r\n\r\n" 413 body_too_large
# A body just within the limit is read and reaches the router.
small=$(head -c 900 /dev/zero | tr '\0' s)
answer=$(raw "POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\nConnection: close\r\n\r\n$small")
assert_not_contains "$answer" "body_too_large" "a 900-byte body with MAX_BODY_BYTES=1k"

# ---- the demo page is off unless DEMO=1 ----------------------------------------
# (Answers of the router keep the connection: the client closes it.)
expect_error "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" 404 demo_disabled
expect_error "POST /demo/events HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}" 404 demo_disabled

# ---- a trailing comma in CORS_ORIGINS ------------------------------------------
curl -s -D "$WORK/cors" -o /dev/null --max-time 5 -X OPTIONS "$url/events" \
    -H 'Origin: https://app.example' -H 'Access-Control-Request-Method: GET' \
    -H 'Access-Control-Request-Headers: authorization' || true
grep -qi '^Access-Control-Allow-Origin: https://app.example' "$WORK/cors" ||
    fail "the origin before a trailing comma in CORS_ORIGINS is not allowed: $(head -1 "$WORK/cors")"
assert_eq 403 "$(http_code "$url/events" -H 'Origin: https://evil.example' \
    -H 'Authorization: Bearer sk_first_0123456789abcdef')" "an origin not listed"
# The empty item after the comma allows no empty or "null" origin.
assert_eq 403 "$(http_code "$url/events" -H 'Origin: null' \
    -H 'Authorization: Bearer sk_first_0123456789abcdef')" "Origin: null"
stream_event 2

# ---- SIGHUP reloads API_KEYS_FILE, streams stay ----------------------------------
printf 'sk_second_0123456789abcdef  bob\n' >"$WORK/keys.new"
mv "$WORK/keys.new" "$WORK/keys"
offset=$(log_size a)
kill -HUP "$(piper_pid a)"
wait_log a 'reload: authentication keys loaded' 10 "$offset"
assert_eq 401 "$(http_status "$url/events" -H 'Authorization: Bearer sk_first_0123456789abcdef')" \
    "the removed key after SIGHUP"
assert_eq 200 "$(http_status "$url/events" -H 'Authorization: Bearer sk_second_0123456789abcdef')" \
    "the new key after SIGHUP"
stream_event 3 # the stream opened with the removed key is still open
# A broken file: the keys are kept, the process lives on.
printf 'this is not a key line\n' >"$WORK/keys"
offset=$(log_size a)
kill -HUP "$(piper_pid a)"
wait_log a 'reload: keys kept as they were' 10 "$offset"
assert_eq 200 "$(http_status "$url/events" -H 'Authorization: Bearer sk_second_0123456789abcdef')" \
    "the kept key after a failed reload"
stream_event 4
piper_running a || fail "SIGHUP ended the process"
assert_eq 1 "$(lines_matching "$(piper_log a)" 0 'msg="session opened".*consumer=alice')" \
    "alice's stream opened once (never closed by the reloads)"

# Every refusal above is counted under its code.
metrics=$(piper_metrics a)
for counted in bad_request:5 header_too_large:1 body_too_large:2 demo_disabled:2 \
    origin_not_allowed:2 invalid_token:1; do
    assert_contains "$metrics" "event_piper_requests_rejected_total{reason=\"${counted%:*}\"} ${counted#*:}" \
        "refusals counted as ${counted%:*}"
done
piper_stop a

# ---- METRICS_TOKEN -----------------------------------------------------------------
piper_start m METRICS_TOKEN=metrics-secret-123
assert_eq 401 "$(http_code "$(piper_url m /metrics)")" "/metrics without a token"
curl -s -D "$WORK/mh" -o "$WORK/mb" "$(piper_url m /metrics)" || true
grep -qi '^WWW-Authenticate: Bearer' "$WORK/mh" || fail "no WWW-Authenticate on the 401"
assert_contains "$(cat "$WORK/mb")" '"error":"missing_token"' "/metrics without a token"
assert_eq 401 "$(http_code "$(piper_url m /metrics)" -H 'Authorization: Bearer wrong')" "/metrics, wrong token"
assert_eq 200 "$(http_code "$(piper_url m /metrics)" -H 'Authorization: Bearer metrics-secret-123')" \
    "/metrics with the token"
curl -fs -H 'Authorization: Bearer metrics-secret-123' "$(piper_url m /metrics)" |
    /usr/bin/python3 "$ROOT/tests/tools/check_metrics.py" >/dev/null || fail "/metrics with the token is not valid"
assert_eq 200 "$(http_code "$(piper_url m /healthz)")" "/healthz needs no token"
piper_stop m
test_done
