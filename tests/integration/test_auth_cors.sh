#!/usr/bin/env bash
# Browser-facing parts of /events: query parameters (EventSource cannot send
# headers), CORS, and authentication with JWT (HS256, RS256) and API keys.
# Tokens are made by PyJWT (Debian python3-jwt), independent of libjwt.
source "$(dirname "$0")/../lib.sh"

PY=/usr/bin/python3
SECRET="0123456789abcdef0123456789abcdef-test-secret"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.pem" 2>/dev/null
openssl pkey -in "$WORK/rsa.pem" -pubout -out "$WORK/rsa.pub"
printf '# test keys\nsk_test_0123456789abcdef  server-consumer\n' >"$WORK/keys"

# token ALG SUB EXP_OFFSET_SECONDS [KEY]: a signed JWT (alg none: unsigned).
token() {
    local t
    t=$("$PY" - "$@" <<'EOF'
import base64, hashlib, hmac, json, sys, time, jwt
alg, sub, exp = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = sys.argv[4] if len(sys.argv) > 4 else None
claims = {"sub": sub, "exp": int(time.time()) + exp, "iat": int(time.time())}
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
if alg == "HS256-ANY-KEY":  # by hand: PyJWT refuses PEM text as an HMAC key
    head = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps(claims).encode())
    mac = hmac.new(key.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest()
    print(f"{head}.{body}.{b64(mac)}")
elif alg == "none":
    print(jwt.encode(claims, None, algorithm="none"))
elif alg == "RS256":
    print(jwt.encode(claims, open(key).read(), algorithm="RS256"))
else:
    print(jwt.encode(claims, key, algorithm=alg))
EOF
) || fail "cannot make a $1 token"
    [ -n "$t" ] || fail "empty $1 token"
    echo "$t"
}

status() { # curl arguments -> HTTP status, the body in $WORK/body (a stream
    # is ended once it has begun)
    http_status -o "$WORK/body" "$@"
}

pg_start
piper_start open CORS_ORIGINS="https://app.example, https://other.example" HEARTBEAT_SECONDS=1 \
    DEMO=1 DEMO_DIR="$ROOT/examples/demo"
piper_start auth JWT_HS256_SECRET="$SECRET" JWT_RS256_PUBLIC_KEY_FILE="$WORK/rsa.pub" \
    API_KEYS_FILE="$WORK/keys" HEARTBEAT_SECONDS=1
piper_wait_ready open
piper_wait_ready auth
open=$(piper_url open)
auth=$(piper_url auth)

# ---- query parameters; the header wins when both are present ----
insert_event qp insert '{"n": 1}' >/dev/null
insert_event qp insert '{"n": 2}' >/dev/null
first=$(sql "select min(id) from events where subscriber = 'qp'")
# The stream is read past its replay and the hand-over, up to a live row
# inserted once the replayed one arrived.
background curl -s -N --max-time 20 "$open/events?consumer_id=qp&last_event_id=$first" >"$WORK/qp"
qp_stream=$LAST_PID
wait_file_lines "$WORK/qp" '^data: \{"n":2\}$' 1 10 "the replayed row on the query-parameter stream"
insert_event qp insert '{"n": 3}' >/dev/null
wait_file_lines "$WORK/qp" '^data: \{"n":3\}$' 1 10 "the live row on the query-parameter stream"
stop_quietly "$qp_stream"
assert_contains "$(cat "$WORK/qp")" "data: {\"n\":2}" "query parameters open a replaying stream"
assert_not_contains "$(cat "$WORK/qp")" "data: {\"n\":1}" "last_event_id respected"
# Read until the row it must show.
stream_until "$WORK/qp2" '^data: \{"n":1\}$' 10 -H "X-Consumer-Id: qp" -H "Last-Event-ID: 0" \
    "$open/events?consumer_id=nobody&last_event_id=$first" || true
assert_contains "$(cat "$WORK/qp2")" "data: {\"n\":1}" "headers win over query parameters"
assert_eq 400 "$(status "$open/events?consumer_id=qp&last_event_id=abc")" "bad last_event_id"
assert_eq 400 "$(status "$open/events?consumer_id=")" "empty consumer_id"

# ---- CORS ----
assert_eq 204 "$(status -X OPTIONS -H 'Origin: https://app.example' \
    -H 'Access-Control-Request-Method: GET' \
    -H 'Access-Control-Request-Headers: last-event-id, x-consumer-id, authorization' \
    -D "$WORK/pre" "$open/events")" "preflight from a listed origin"
pre=$(tr -d '\r' <"$WORK/pre")
assert_contains "$pre" "Access-Control-Allow-Origin: https://app.example" "preflight echoes the origin"
assert_contains "$pre" "Access-Control-Allow-Credentials: true" "credentials for a listed origin"
assert_contains "$pre" "Last-Event-ID" "preflight allows Last-Event-ID"
assert_contains "$pre" "X-Consumer-Id" "preflight allows X-Consumer-Id"
assert_contains "$pre" "Authorization" "preflight allows Authorization"
assert_eq 403 "$(status -X OPTIONS -H 'Origin: https://evil.example' "$open/events")" \
    "preflight from another origin"
assert_contains "$(cat "$WORK/body")" '"error":"origin_not_allowed"' "JSON error body"
status -D "$WORK/get" -H 'Origin: https://other.example' "$open/events?consumer_id=qp" >/dev/null
assert_contains "$(tr -d '\r' <"$WORK/get")" "Access-Control-Allow-Origin: https://other.example" \
    "actual request answered with the origin"
assert_contains "$(tr -d '\r' <"$WORK/get")" "Vary: Origin" "Vary: Origin"
assert_eq 403 "$(status -H 'Origin: https://evil.example' "$open/events?consumer_id=qp")" \
    "stream refused to another origin"
status -D "$WORK/noorigin" "$auth/events" >/dev/null
assert_not_contains "$(tr -d '\r' <"$WORK/noorigin")" "Access-Control-Allow-Origin" \
    "no CORS headers without CORS_ORIGINS"

# ---- authentication ----
hs=$(token HS256 alice 60 "$SECRET")
rs=$(token RS256 alice 60 "$WORK/rsa.pem")
expired=$(token HS256 alice -120 "$SECRET")
skewed=$(token HS256 alice -10 "$SECRET") # within JWT_LEEWAY_SECONDS (30)
bad_signature=$(token HS256 alice 60 "${SECRET}x")
unsigned=$(token none alice 60)
confused=$(token HS256-ANY-KEY alice 60 "$(cat "$WORK/rsa.pub")")
assert_eq 401 "$(status "$auth/events" -H 'X-Consumer-Id: alice')" "no credential"
assert_contains "$(cat "$WORK/body")" '"error":"missing_token"' "missing token body"
assert_eq 200 "$(status "$auth/events" -H "Authorization: Bearer $hs")" "HS256 token"
assert_eq 200 "$(status "$auth/events" -H "Authorization: Bearer $rs" -H 'X-Consumer-Id: alice')" "RS256 token"
assert_eq 200 "$(status "$auth/events?access_token=$hs&consumer_id=alice")" "token as a query parameter"
assert_eq 403 "$(status "$auth/events" -H "Authorization: Bearer $hs" -H 'X-Consumer-Id: bob')" "another consumer"
assert_contains "$(cat "$WORK/body")" '"error":"wrong_consumer"' "403 body"
assert_eq 401 "$(status "$auth/events" -H "Authorization: Bearer $expired")" "expired"
assert_contains "$(cat "$WORK/body")" '"error":"token_expired"' "expired body"
assert_eq 200 "$(status "$auth/events" -H "Authorization: Bearer $skewed")" "expired within the leeway"
assert_eq 401 "$(status "$auth/events" -H "Authorization: Bearer $bad_signature")" "bad signature"
assert_contains "$(cat "$WORK/body")" '"error":"invalid_token"' "bad signature body"
assert_eq 401 "$(status "$auth/events" -H "Authorization: Bearer $unsigned")" "alg none"
# An RS256 public key used as an HS256 secret (algorithm confusion).
assert_eq 401 "$(status "$auth/events" -H "Authorization: Bearer $confused")" \
    "HS256 signed with the RSA public key"
tampered="${hs%.*}.$(printf 'x%.0s' {1..43})"
assert_eq 401 "$(status "$auth/events" -H "Authorization: Bearer $tampered")" "tampered signature"
assert_eq 401 "$(status "$auth/events" -H "Authorization: Bearer not-a-token")" "garbage"
assert_eq 200 "$(status "$auth/events" -H 'Authorization: Bearer sk_test_0123456789abcdef')" "API key"
assert_eq 403 "$(status "$auth/events" -H 'Authorization: Bearer sk_test_0123456789abcdef' -H 'X-Consumer-Id: alice')" \
    "API key for another consumer"
assert_eq 401 "$(status "$auth/events" -H 'Authorization: Bearer sk_test_0123456789abcdeX')" "unknown API key"

# A stream ends cleanly when its token expires; the client resumes with a
# fresh token and Last-Event-ID, losing nothing.
short=$(token HS256 carol 2 "$SECRET")
insert_event carol insert '{"n": 1}' >/dev/null
start=$(date +%s)
curl -s -N --max-time 10 -H "Authorization: Bearer $short" -H 'Last-Event-ID: 0' "$auth/events" \
    >"$WORK/expiring" || fail "the expiring stream did not end cleanly"
elapsed=$(($(date +%s) - start))
[ "$elapsed" -le 5 ] || fail "stream outlived its token by ${elapsed}s"
assert_contains "$(cat "$WORK/expiring")" "data: {\"n\":1}" "events before expiry"
assert_contains "$(cat "$WORK/expiring")" ": credential expired" "expiry announced"
# The client can see the end of the body before the service has counted
# the close.
# Two: this one and the stream opened above with a token already past its
# exp but within the leeway, which ends at once.
wait_metric auth 'event_piper_sessions_closed_total{reason="token_expired"}' = 2 5

# ---- the demo page and its insert endpoint ----
assert_eq 200 "$(status -D "$WORK/page" "$open/")" "demo page"
assert_contains "$(tr -d '\r' <"$WORK/page")" "Content-Type: text/html" "page content type"
assert_contains "$(cat "$WORK/body")" "<title>event-piper demo</title>" "page body"
assert_eq 200 "$(status "$open/app.js")" "page script"
assert_eq 404 "$(status "$open/../README.md")" "nothing else is served"
background "$SSE_CLIENT" --port "$(piper_port open)" --consumer demo --count 1 --timeout 10 \
    --out "$WORK/demo" --quiet
demo_client=$LAST_PID
wait_log open 'msg="session opened" .* consumer=demo ' 5
assert_eq 201 "$(status -X POST -H 'Content-Type: application/json' \
    -d '{"consumer_id": "demo", "type": "demo", "payload": {"text": "hi"}}' "$open/demo/events")" \
    "demo insert"
wait "$demo_client" || fail "the demo event did not arrive"
assert_eq "$(sql "select max(id) from events where subscriber = 'demo'")	demo	{\"text\":\"hi\"}" \
    "$(cat "$WORK/demo/0.events")" "demo event delivered"
assert_eq 400 "$(status -X POST -d '{"consumer_id": "demo"}' "$open/demo/events")" "demo insert without payload"
assert_eq 404 "$(status -X POST -d '{}' "$auth/demo/events")" "demo inserts off by default"
# A browser sends Origin on a same-origin POST too: the page served by the
# service may insert without being listed in CORS_ORIGINS; a foreign page not.
own_origin="http://127.0.0.1:$(piper_port open)"
assert_eq 201 "$(status -X POST -H "Origin: $own_origin" \
    -d '{"consumer_id": "demo", "type": "demo", "payload": {}}' "$open/demo/events")" "same-origin demo insert"
assert_eq 403 "$(status -X POST -H "Origin: http://127.0.0.2:$(piper_port open)" \
    -d '{"consumer_id": "demo", "type": "demo", "payload": {}}' "$open/demo/events")" "insert from another origin"
assert_eq 403 "$(status -X POST -H "Origin: $own_origin.evil.example" \
    -d '{"consumer_id": "demo", "type": "demo", "payload": {}}' "$open/demo/events")" "insert from a look-alike origin"

# A demo insert still running at shutdown is freed with the service (the
# ASan binary would report a leak and exit non-zero otherwise): the table is
# locked so that the insert waits.
background psql "$DATABASE_URL" -X -q -c "begin; lock table events in access exclusive mode; select pg_sleep(60)" 2>/dev/null
locker=$LAST_PID
table_locked() {
    [ "$(sql "select count(*) from pg_locks where relation = 'events'::regclass and mode = 'AccessExclusiveLock' and granted")" = 1 ]
}
wait_for "the table lock" 10 table_locked
background curl -s -o /dev/null --max-time 20 -X POST -d '{"consumer_id": "demo", "type": "demo", "payload": {}}' \
    "$open/demo/events"
insert_waiting() {
    [ "$(sql "select count(*) from pg_stat_activity where application_name = 'event-piper replay' and wait_event_type = 'Lock'")" = 1 ]
}
wait_for "the demo insert to wait for the lock" 10 insert_waiting
piper_stop open
sql "select pg_terminate_backend(pid) from pg_stat_activity where pid <> pg_backend_pid() and query like '%pg_sleep(60)%'" >/dev/null
wait "$locker" 2>/dev/null || true
piper_stop auth
test_done
