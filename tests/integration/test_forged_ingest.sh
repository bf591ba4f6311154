#!/usr/bin/env bash
# Forged notifications. PostgreSQL has no permission on NOTIFY: any role that
# can connect can pg_notify new_events with any text. Here a role with no
# privilege on the events table sends forged rows: a huge id, an id not yet
# handed out, the id of a real row with a made-up payload, and id-only and
# malformed hints, and rows with a MAC that does not verify. None of it may
# reach a stream; the hub's high-water mark
# must not move, so a stream opened afterwards without Last-Event-ID still
# receives the next real row; and the real row that later gets a forged id
# arrives with its own content.
source "$(dirname "$0")/../lib.sh"

pg_start
sql "create role forger login; grant connect on database event_piper to forger" >/dev/null
FORGER_URL=${DATABASE_URL/user=postgres/user=forger}
forge() { # payload: notify as the unprivileged role
    psql "$FORGER_URL" -X -q -t -A -v ON_ERROR_STOP=1 \
        -c "select pg_notify('new_events', \$\$$1\$\$)" >/dev/null
}
assert_eq forger "$(psql "$FORGER_URL" -X -q -t -A -c 'select current_user')" "the forger's role"
psql "$FORGER_URL" -X -q -t -A -c "select count(*) from events" >/dev/null 2>&1 &&
    fail "the forger can read the events table; the test would prove nothing"

piper_start a HEARTBEAT_SECONDS=1
piper_wait_ready a
url=$(piper_url a /events)

background curl -sN -o "$WORK/before" "$url" -H "X-Consumer-Id: c1"
wait_for "the first stream" 5 sh -c "[ \$(grep -c 'session opened' '$(piper_log a)') -ge 1 ]"
real1=$(insert_event c1 real '{"n": 1}')
wait_for "the first real row" 5 grep -q '^data: {"n":1}$' "$WORK/before"

next=$((real1 + 1))
forge '{"id":9223372036854775806,"subscriber":"c1","type":"x","ts":0,"payload":{"forged":"huge"}}'
forge "{\"id\":$real1,\"subscriber\":\"c1\",\"type\":\"x\",\"ts\":0,\"payload\":{\"forged\":\"old id\"}}"
forge "{\"id\":$((next + 2)),\"subscriber\":\"c1\",\"type\":\"x\",\"ts\":0,\"payload\":{\"forged\":\"future id\"}}"
forge '{"id":9223372036854775807}'
forge '{"id":123456789,"subscriber":"c1"}'
forge 'not json at all'
forge '{"id":-1,"subscriber":"c1"}'
# Signed-looking rows: a made-up MAC, and a real HMAC-SHA256 under a key
# that is not events_notify_key's. Neither verifies, so both are read back
# (and not found) like hints.
body="{\"id\":$((next + 1)),\"subscriber\":\"c1\",\"type\":\"x\",\"ts\":0,\"payload\":{\"forged\":\"bad mac\"}}"
forge "$(printf '%064d' 7) $body"
body='{"id":9223372036854775805,"subscriber":"c1","type":"x","ts":0,"payload":{"forged":"wrong key"}}'
forge "$(python3 -c 'import hashlib, hmac, sys; print(hmac.new(b"k" * 32, sys.argv[1].encode(), hashlib.sha256).hexdigest())' "$body") $body"
received() { [ "$(piper_metric a event_piper_events_received_total)" -ge 10 ]; }
wait_for "the service to take the forged notifications" 5 received
# Their ids were looked up in the table (and not found), then nothing.
wait_for "the forged ids to be looked up" 5 sh -c \
    "curl -s '$(piper_url a /metrics)' | grep -q '^event_piper_events_invalid_total{reason=\"missing_row\"} [1-9]'"

# Opened after the forgeries, without Last-Event-ID: starts at the real
# high-water mark, not at 9223372036854775806.
background curl -sN -o "$WORK/after" "$url" -H "X-Consumer-Id: c1"
wait_for "the second stream" 5 sh -c "[ \$(grep -c 'session opened' '$(piper_log a)') -ge 2 ]"

# Three real rows: the last one gets the id forged as "future id" above.
for n in 2 3 4; do insert_event c1 real "{\"n\": $n}" >/dev/null; done
for stream in before after; do
    wait_for "the real rows on $stream" 5 grep -q '^data: {"n":4}$' "$WORK/$stream"
done
assert_eq "$((next + 2))" "$(sql "select id from events where payload = '{\"n\": 4}'")" \
    "the last real row has the id forged earlier"
grep -q forged "$WORK/before" "$WORK/after" && fail "a forged payload reached a stream"
assert_eq "$real1 $next $((next + 1)) $((next + 2))" \
    "$(grep '^id: ' "$WORK/before" | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')" \
    "the first stream has exactly the real rows"
assert_eq "$next $((next + 1)) $((next + 2))" \
    "$(grep '^id: ' "$WORK/after" | cut -d' ' -f2 | tr '\n' ' ' | sed 's/ $//')" \
    "the stream opened after the forgeries has the real rows since"

metrics=$(piper_metrics a)
assert_contains "$metrics" 'event_piper_events_invalid_total{reason="bad_notification"} 2' \
    "malformed notifications counted"
assert_contains "$metrics" 'event_piper_events_invalid_total{reason="missing_row"} 6' \
    "hinted ids not in the table counted (huge, future, unknown, id-only, two bad signatures)"
# The real rows came signed: delivered without a read back.
reads=$(piper_metric a event_piper_ingest_confirm_reads_total)
insert_event c1 real '{"n": 5}' >/dev/null
wait_for "a signed row" 5 grep -q '^data: {"n":5}$' "$WORK/after"
assert_eq "$reads" "$(piper_metric a event_piper_ingest_confirm_reads_total)" \
    "a signed row needs no read back"
grep -q 'msg="notification skipped"' "$(piper_log a)" || fail "malformed notifications not logged"
# The NATS ingest's staleness gauge has no meaning on the LISTEN path.
assert_not_contains "$metrics" "event_piper_ingest_last_message_age_seconds" \
    "no message-age gauge with INGEST=pg_notify"
piper_stop a
test_done
