#!/usr/bin/env bash
# The HTTP/2 client examples against the service's TLS port (a CA made
# here): Node's built-in http2 (examples/node/http2-client.mjs, trusting the
# CA with NODE_EXTRA_CA_CERTS) and Java's HttpClient (examples/java, over
# HTTP/2 by ALPN, trusting the CA through a truststore made with keytool).
# Both start after a given Last-Event-ID, so they get replayed rows first;
# the service is stopped (SIGTERM: GOAWAY), then killed, and restarted on the
# same port while rows are committed: each must end with exactly its
# consumer's rows after its start, once and in order. Then the Node client
# opens 4 streams on one h2c (cleartext, prior knowledge) connection.
source "$(dirname "$0")/../lib.sh"

command -v node >/dev/null || fail "node not found (Debian nodejs)"
command -v javac >/dev/null || fail "javac not found (Debian openjdk-17-jdk-headless)"
command -v keytool >/dev/null || fail "keytool not found (Debian openjdk-17-jdk-headless)"
mkdir -p "$WORK/java"
javac -d "$WORK/java" "$ROOT/examples/java/SseClient.java" || fail "examples/java/SseClient.java does not compile"

pg_start
tls_make_cert "$WORK/tls"
keytool -importcert -noprompt -alias event-piper-test-ca -file "$TLS_CA" -keystore "$WORK/trust.p12" \
    -storetype PKCS12 -storepass changeit >/dev/null 2>&1 || fail "keytool cannot make the truststore"
settings=(TLS_CERT_FILE="$WORK/tls/server.pem" TLS_KEY_FILE="$WORK/tls/server.key" RETRY_MS=300)
piper_start a "${settings[@]}"
piper_wait_ready a
port=$(piper_port a)
base=$(piper_url a)
h2_open() { piper_metric_now "$1" 'event_piper_streams_open{transport="h2"}'; }

for c in node java; do
    sql "insert into events (type, subscriber, payload)
         select 'insert', '$c', jsonb_build_object('n', n, 'who', '$c') from generate_series(1, 4) n" >/dev/null
done
start_after=$(sql "select min(id) from events")
NODE_EXTRA_CA_CERTS=$TLS_CA PIPER_URL=$base CONSUMER_ID=node LAST_EVENT_ID=$start_after \
    background node "$ROOT/examples/node/http2-client.mjs" >"$WORK/node.out" 2>"$ARTIFACTS/$TEST_NAME.node.log"
node_pid=$LAST_PID
LAST_EVENT_ID=$start_after background java -Djavax.net.ssl.trustStore="$WORK/trust.p12" \
    -Djavax.net.ssl.trustStorePassword=changeit -cp "$WORK/java" SseClient "$base" java \
    >"$WORK/java.out" 2>"$ARTIFACTS/$TEST_NAME.java.log"
java_pid=$LAST_PID

wait_output 2 60 "h2 streams of the two clients" h2_open a
wait_file_lines "$WORK/node.out" . 3 20 "the node client's replayed rows"
wait_file_lines "$WORK/java.out" . 4 30 "the java client's replayed rows"
grep -q 'connected over HTTP/2 (h2)' "$ARTIFACTS/$TEST_NAME.node.log" || fail "node did not connect over h2"
grep -q 'connected over HTTP_2' "$ARTIFACTS/$TEST_NAME.java.log" || fail "java did not connect over HTTP/2"
insert_event node insert '{"live": 1}' >/dev/null
insert_event java insert '{"live": 1}' >/dev/null

piper_stop a
for c in node java; do insert_event "$c" insert '{"while": "down"}' >/dev/null; done
piper_start b PORT="$port" "${settings[@]}"
wait_output 2 30 "h2 streams after the graceful restart" h2_open b
for c in node java; do insert_event "$c" update '{"after": "restart"}' >/dev/null; done
piper_kill b
for c in node java; do insert_event "$c" insert '{"while": "dead"}' >/dev/null; done
piper_start c PORT="$port" "${settings[@]}"
wait_output 2 30 "h2 streams after the crash" h2_open c
for c in node java; do insert_event "$c" insert '{"after": "crash"}' >/dev/null; done

for c in node java; do
    expected_events "$c" "$start_after" >"$WORK/$c.expected"
    wait_file_lines "$WORK/$c.out" . "$(wc -l <"$WORK/$c.expected")" 30 "every row on the $c client"
    assert_file_eq "$WORK/$c.expected" "$WORK/$c.out" "the $c client's rows: exactly once, in order"
done
kill -0 "$node_pid" 2>/dev/null || fail "the node client exited"
kill -0 "$java_pid" 2>/dev/null || fail "the java client exited"
assert_eq 1 "$(grep -c 'GOAWAY received, code 0' "$ARTIFACTS/$TEST_NAME.node.log")" "GOAWAYs seen by node"
stop_quietly "$node_pid" "$java_pid"
piper_stop c

# ---- h2c: 4 streams of the Node client on one cleartext connection ----
piper_start clear
PIPER_URL=$(piper_url clear) CONSUMER_ID=multi STREAMS=4 \
    background node "$ROOT/examples/node/http2-client.mjs" >"$WORK/multi.out" 2>"$ARTIFACTS/$TEST_NAME.multi.log"
multi_pid=$LAST_PID
wait_metric clear 'event_piper_streams_open{transport="h2"}' = 4 20
assert_eq 1 "$(piper_metric clear 'event_piper_connections_open{transport="h2"}')" "h2c connections of 4 streams"
id=$(insert_event multi insert '{"fan": 4}')
wait_file_lines "$WORK/multi.out" "^$id	insert	\\{\"fan\":4\\}\$" 4 20 "the row on the 4 streams"
grep -q 'connected over HTTP/2 (h2c)' "$ARTIFACTS/$TEST_NAME.multi.log" || fail "node did not connect over h2c"
stop_quietly "$multi_pid"
piper_stop clear
test_done
