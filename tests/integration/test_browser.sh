#!/usr/bin/env bash
# The demo page in a real headless Chromium (Debian's chromium, driven by
# playwright-core from tests/browser): rows inserted with psql and through
# the page's button appear; the service is killed (SIGKILL) and restarted on
# the same port while rows are committed; the page's EventSource reconnects
# with Last-Event-ID by itself and shows each of those rows exactly once.
# Screenshots (desktop and phone) land in tests/artifacts/.
source "$(dirname "$0")/../lib.sh"

command -v node >/dev/null || fail "node not found (.ci/install-deps test installs it)"
[ -x /usr/bin/chromium ] || fail "/usr/bin/chromium not found (Debian package chromium)"
[ -d "$ROOT/tests/browser/node_modules/playwright-core" ] ||
    fail "playwright-core is not installed (.ci/install-deps test runs npm ci in tests/browser)"

pg_start
settings=(DEMO=1 RETRY_MS=300 HEARTBEAT_SECONDS=2)
piper_start a "${settings[@]}"
piper_wait_ready a
port=$(piper_port a)

coproc BROWSER {
    cd "$ROOT/tests/browser" &&
        PIPER_URL="http://127.0.0.1:$port" DATABASE_URL="$DATABASE_URL" ARTIFACTS="$ARTIFACTS" \
            exec node demo_test.mjs
}
browser_pid=$! # the coprocess, also in BROWSER_PID
BACKGROUND_PIDS+=("$browser_pid")
exec {from_browser}<&"${BROWSER[0]}" {to_browser}>&"${BROWSER[1]}"

generation=0
result=""
while read -r line <&"$from_browser"; do
    case "$line" in
        kill)
            piper_kill "a$([ "$generation" = 0 ] || echo "$generation")"
            log "service killed"
            echo killed >&"$to_browser"
            ;;
        start) # asked once the page's retries met the closed port
            generation=$((generation + 1))
            piper_start "a$generation" PORT="$port" "${settings[@]}"
            piper_wait_ready "a$generation"
            log "service restarted on port $port"
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
for shot in demo-page.png demo-page-phone.png; do
    [ -s "$ARTIFACTS/$shot" ] || fail "no screenshot $shot"
done
log "screenshots: $ARTIFACTS/demo-page.png, $ARTIFACTS/demo-page-phone.png"
piper_stop "a$generation"
test_done
