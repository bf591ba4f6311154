#!/usr/bin/env bash
# Chromium on the service's https:// origin (a certificate from a CA made
# here): 12 EventSources receive their events over one HTTP/2 connection (the
# six-connection limit of HTTP/1.1 would stall six of them), and a WebSocket
# resumes with last_event_id across a SIGKILL and a restart, every row once.
# The page is driven by tests/browser/transports_test.mjs (playwright-core,
# Debian's chromium), which asks this script to kill and restart the service.
source "$(dirname "$0")/../lib.sh"

command -v node >/dev/null || fail "node not found (.ci/install-deps test installs it)"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium not found (Debian package chromium)"
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] ||
    fail "playwright-core is not installed (.ci/install-deps test runs npm ci in tests/browser)"

pg_start
tls_make_cert "$WORK/tls"
settings=(TLS_CERT_FILE="$WORK/tls/server.pem" TLS_KEY_FILE="$WORK/tls/server.key" HEARTBEAT_SECONDS=2)
piper_start a "${settings[@]}"
piper_wait_ready a
port=$(piper_port a)

coproc BROWSER {
    cd "$ROOT/tests/browser" &&
        PIPER_URL="https://127.0.0.1:$port" DATABASE_URL="$DATABASE_URL" exec node transports_test.mjs
}
browser_pid=$!
BACKGROUND_PIDS+=("$browser_pid")
exec {from_browser}<&"${BROWSER[0]}" {to_browser}>&"${BROWSER[1]}"

name=a
result=""
while read -r line <&"$from_browser"; do
    case "$line" in
        kill)
            piper_kill "$name"
            echo killed >&"$to_browser"
            ;;
        start)
            name=b
            piper_start b PORT="$port" "${settings[@]}"
            piper_wait_ready b
            echo started >&"$to_browser"
            ;;
        ok) result=ok ;;
        *) fail "unexpected request from the browser script: $line" ;;
    esac
done
status=0
wait "$browser_pid" || status=$?
if [ "$status" != 0 ] || [ "$result" != ok ]; then
    fail "the browser test failed (status $status, see above)"
fi
piper_stop "$name"
test_done
