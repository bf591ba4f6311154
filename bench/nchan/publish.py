"""Publishes to Nchan for bench/run.sh (scenario nchan).

publish.py PORT RATE SECONDS PAD: one keep-alive connection posts the
producer's payload, {"t": <Unix microseconds>, "pad": "x" * PAD}, to
channel fan0 RATE times a second for SECONDS; "t" is taken just before
each post, as the producer takes it in its INSERT.
"""
import http.client
import json
import sys
import time


def main():
    port, rate, seconds, pad = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
    conn = http.client.HTTPConnection("127.0.0.1", port)
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        time.sleep(max(0.0, start + n / rate - time.monotonic()))
        body = json.dumps({"t": time.time_ns() // 1000, "pad": "x" * pad}, separators=(",", ":"))
        conn.request("POST", "/pub?id=fan0", body, {"Content-Type": "application/json"})
        reply = conn.getresponse()
        reply.read()
        if reply.status not in (201, 202):
            sys.exit(f"nchan publish: HTTP {reply.status}")


if __name__ == "__main__":
    main()
