#!/usr/bin/env bash
# Bad requests get a 4xx with a short JSON body and never disturb streams
# that are already open.
source "$(dirname "$0")/../lib.sh"

pg_start
piper_start a CONSUMER_ID_MAX_BYTES=32
piper_wait_ready a
url=$(piper_url a /events)

background curl -sN -o "$WORK/good" "$url" -H "X-Consumer-Id: good"
wait_log a 'msg="session opened"' 5

# check METHOD PATH EXPECTED_STATUS EXPECTED_ERROR [curl args...]
check() {
    local method=$1 path=$2 status=$3 error=$4
    shift 4
    local body code
    body=$(curl -s -X "$method" -o - -w '\n%{http_code} %{content_type}' "$(piper_url a "$path")" "$@")
    code=$(tail -n 1 <<<"$body")
    body=$(head -n -1 <<<"$body")
    assert_eq "$status application/json" "$code" "$method $path $*"
    assert_contains "$body" "\"error\":\"$error\"" "$method $path $* body"
    assert_contains "$body" '"message":"' "$method $path $* message"
}

long=$(printf 'x%.0s' $(seq 1 33))
check GET /events 400 missing_consumer_id
check GET /events 400 invalid_consumer_id -H "X-Consumer-Id;"
check GET /events 400 invalid_consumer_id -H "X-Consumer-Id: $long"
check GET /events 400 invalid_consumer_id -H "$(printf 'X-Consumer-Id: \xff\xfe')"
check GET /events 400 invalid_last_event_id -H "X-Consumer-Id: toto" -H "Last-Event-ID: abc"
check GET /events 400 invalid_last_event_id -H "X-Consumer-Id: toto" -H "Last-Event-ID: -1"
check GET /events 400 invalid_last_event_id -H "X-Consumer-Id: toto" -H "Last-Event-ID: 99999999999999999999"
check GET /nope 404 not_found
check GET /index.htm 404 not_found
check POST /events 405 method_not_allowed -H "X-Consumer-Id: toto"
check PUT /events 405 method_not_allowed
check DELETE /events 405 method_not_allowed
check POST /healthz 405 method_not_allowed
allow=$(curl -s -X POST -D - -o /dev/null "$url" | tr -d '\r' | grep -i '^Allow:')
assert_eq "Allow: GET, OPTIONS" "$allow" "Allow header on 405"

# A consumer id of exactly the maximum length is fine (the stream is ended
# once it has begun).
max=$(printf 'y%.0s' $(seq 1 32))
code=$(http_status "$url" -H "X-Consumer-Id: $max")
assert_eq 200 "$code" "consumer id of maximum length"

# Oversized request headers are refused by the HTTP layer.
huge=$(head -c 20000 /dev/zero | tr '\0' 'h')
check GET /events 431 header_too_large -H "X-Consumer-Id: toto" -H "X-Huge: $huge"

# The open stream never noticed.
insert_event good insert '{"still": "here"}' >/dev/null
wait_for "the good stream's event" 5 grep -q '^data: {"still":"here"}$' "$WORK/good"
metrics=$(piper_metrics a)
# Each refusal is counted under its own error code.
for counted in missing_consumer_id:1 invalid_consumer_id:3 invalid_last_event_id:3 not_found:2 \
    method_not_allowed:5 header_too_large:1; do
    assert_contains "$metrics" "event_piper_requests_rejected_total{reason=\"${counted%:*}\"} ${counted#*:}" \
        "refusals counted as ${counted%:*}"
done
piper_stop a
test_done
