#!/usr/bin/env bash
# h2spec, the HTTP/2 conformance suite, against the service over TLS (ALPN
# h2) and over cleartext (h2c with prior knowledge). The cases known to fail
# are listed below with the reason; the test fails when any other case fails
# and when a listed one starts passing (then take it off the list).
#
# h2spec is built once with `go install` at a pinned version into
# $H2SPEC_CACHE (default ~/.cache/event-piper), outside the repository; the
# test skips, saying SKIP, only when there is no go or the module cannot be
# downloaded.
source "$(dirname "$0")/../lib.sh"

H2SPEC_MODULE=github.com/summerwind/h2spec/cmd/h2spec
H2SPEC_VERSION=v2.2.1+incompatible # the newest release in the Go module proxy, 145 cases
H2SPEC_CACHE=${H2SPEC_CACHE:-${HOME:-/root}/.cache/event-piper}
H2SPEC_DIR="$H2SPEC_CACHE/h2spec-$H2SPEC_VERSION"
H2SPEC="$H2SPEC_DIR/h2spec"

# TLS passes every case. Failing on cleartext only:
# - http2/3.5/2: an invalid connection preface must close the connection.
#   The cleartext port serves HTTP/1.1 too, so bytes that are not the preface
#   are read as an HTTP/1.1 request and answered 400 before the close: h2spec
#   reads that answer as a broken frame.
# (http2/5.1.1/2, HEADERS opening a stream below the last one, failed with
# both until src/net/h2.c made it a connection error itself.)
known_h2c=(http2/3.5/2)

if [ ! -x "$H2SPEC" ]; then
    go=$(command -v go || true)
    [ -n "$go" ] || [ ! -x /usr/local/go/bin/go ] || go=/usr/local/go/bin/go
    if [ -z "$go" ]; then
        log "SKIP: no go to build h2spec with (Debian golang-go)"
        exit 0
    fi
    mkdir -p "$H2SPEC_DIR"
    log "building h2spec $H2SPEC_VERSION into $H2SPEC_DIR"
    if ! GOBIN="$H2SPEC_DIR" GOFLAGS=-modcacherw "$go" install "$H2SPEC_MODULE@$H2SPEC_VERSION" \
        >"$WORK/go-install.log" 2>&1; then
        cat "$WORK/go-install.log" >&2
        log "SKIP: cannot build h2spec $H2SPEC_VERSION"
        exit 0
    fi
fi

# h2spec_failures JUNIT: the ids of the failed cases (as h2spec takes them on
# its command line, "http2/5.1.1/2"), sorted, then a line "total N".
h2spec_failures() {
    /usr/bin/python3 - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
failed, total = [], 0
for suite in ET.parse(sys.argv[1]).getroot().iter("testsuite"):
    for i, case in enumerate(suite.iter("testcase"), 1):
        total += 1
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(f"{suite.get('package')}/{i}")
for f in sorted(failed):
    print(f)
print("total", total)
EOF
}

# run_h2spec NAME EXPECTED-FAILURES... [-- H2SPEC FLAGS]: runs the suite
# against the instance and compares the failed cases with the expected ones.
run_h2spec() {
    local name=$1 expected got
    shift
    local -a known=() flags=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do known+=("$1"); shift; done
    [ $# -eq 0 ] || { shift; flags=("$@"); }
    # Exit status 1 when a case fails: the comparison below decides.
    "$H2SPEC" -p "$(piper_port "$name")" -o 5 -j "$WORK/$name.xml" "${flags[@]}" \
        >"$ARTIFACTS/$TEST_NAME.$name.h2spec.txt" 2>&1 || true
    [ -s "$WORK/$name.xml" ] || fail "h2spec wrote no report against $name: $(tail -5 "$ARTIFACTS/$TEST_NAME.$name.h2spec.txt")"
    got=$(h2spec_failures "$WORK/$name.xml")
    expected=$(
        [ ${#known[@]} -eq 0 ] || printf '%s\n' "${known[@]}" | sort
        echo "total 145"
    )
    if [ "$got" != "$expected" ]; then
        sed -n '/^Failures:/,$p' "$ARTIFACTS/$TEST_NAME.$name.h2spec.txt" >&2
        fail "h2spec against $name: failed cases and total differ from the known ones: expected [$expected], got [$got]"
    fi
    log "h2spec against $name: $((145 - ${#known[@]}))/145 passed, failing as known: ${known[*]:-none}"
    piper_running "$name" || fail "$name died under h2spec"
}

pg_start
tls_make_cert "$WORK/tls"
piper_start tls TLS_CERT_FILE="$WORK/tls/server.pem" TLS_KEY_FILE="$WORK/tls/server.key"
piper_start h2c
run_h2spec tls -- -t -k
run_h2spec h2c "${known_h2c[@]}"
# Still serving after the suite's malformed frames, and no sanitizer report.
assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' --http2 "$(piper_url tls /healthz)")" "tls after h2spec"
assert_eq 200 "$(curl -s -o /dev/null -w '%{http_code}' --http2-prior-knowledge "$(piper_url h2c /healthz)")" \
    "h2c after h2spec"
piper_stop tls
piper_stop h2c
test_done
