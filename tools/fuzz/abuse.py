"""Hostile requests against a running `funnel serve`, each answered with the right 4xx, and the
server still serving afterwards (docs/collector.md, "Fuzzing").

usage: abuse.py URL KEY IDLE_TIMEOUT_SECONDS MAX_BODY_BYTES

Checks, with the standard library only:
  - malformed JSON array body -> 400; empty body -> 400; bad gzip -> 400
  - wrong Content-Type (XML, a form) -> 415; Content-Encoding br -> 415
  - unknown route -> 404; known route, wrong method -> 405 with Allow
  - a body over the limit -> 413; a gzip body inflating past the limit (a gzip bomb) -> 413
  - a very long line within the limit -> 200, quarantined as invalid JSON, the other lines stored
  - a client that sends half a request and stalls is cut off after the idle timeout, and other
    clients are served meanwhile
  - no key -> 401; a report key posting events -> refused before the body is read
  - after all of it, /healthz answers 200 and an ordinary batch is stored
"""
import gzip
import http.client
import json
import socket
import sys
import time
import urllib.parse


def main():
    url, key, idle, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname, parts.port
    failures = []

    def request(method, path, body=None, headers=None, auth=True):
        c = http.client.HTTPConnection(host, port, timeout=30)
        h = dict(headers or {})
        if auth:
            h["Authorization"] = f"Bearer {key}"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict(r.getheaders()), data

    def expect(name, got, want, body=b""):
        if got != want:
            failures.append(f"{name}: status {got}, expected {want} ({body[:200]!r})")
        else:
            print(f"ok  {name}: {got}")

    ndjson = {"Content-Type": "application/x-ndjson"}
    event = json.dumps({"type": "impression", "event_id": "abuse-1", "ts": 1000, "user_id": "abuser",
                        "item_id": "a", "position": 1}).encode()

    s, _, b = request("POST", "/v1/events", b'[{"type": "click", "event_id":', {"Content-Type": "application/json"})
    expect("malformed JSON array", s, 400, b)
    s, _, b = request("POST", "/v1/events", b"", ndjson)
    expect("empty body", s, 400, b)
    s, _, b = request("POST", "/v1/events", b"\x1f\x8b\x08\x00garbage", {**ndjson, "Content-Encoding": "gzip"})
    expect("bad gzip", s, 400, b)
    s, _, b = request("POST", "/v1/events", b"<events/>", {"Content-Type": "application/xml"})
    expect("XML content type", s, 415, b)
    s, _, b = request("POST", "/v1/events", event, {"Content-Type": "application/x-www-form-urlencoded"})
    expect("form content type", s, 415, b)
    s, _, b = request("POST", "/v1/events", event, {**ndjson, "Content-Encoding": "br"})
    expect("brotli encoding", s, 415, b)
    s, _, b = request("GET", "/v2/nothing")
    expect("unknown route", s, 404, b)
    s, h, b = request("DELETE", "/v1/events")
    expect("wrong method", s, 405, b)
    if h.get("Allow") != "POST":
        failures.append(f"wrong method: Allow {h.get('Allow')!r}, expected 'POST'")
    s, _, b = request("POST", "/v1/events", b" " * (limit + 1) + event, ndjson)
    expect("body over the limit", s, 413, b)
    bomb = gzip.compress(b" " * (limit * 4))
    s, _, b = request("POST", "/v1/events", bomb, {**ndjson, "Content-Encoding": "gzip"})
    expect(f"gzip bomb ({len(bomb)} bytes inflating to {limit * 4})", s, 413, b)
    s, _, b = request("POST", "/v1/events", event, ndjson, auth=False)
    expect("no key", s, 401, b)

    long_line = b'{"type": "impression", "note": "' + b"x" * (limit // 2) + b'"'
    s, _, b = request("POST", "/v1/events", long_line + b"\n" + event, ndjson)
    expect("very long line", s, 200, b)
    if s == 200:
        answer = json.loads(b)
        if answer["accepted"] + answer["duplicates"] != 1 or [q["reason"] for q in answer["quarantined"]] != ["invalid_json"]:
            failures.append(f"very long line: answer {answer}")

    # A stalled client: half a request, then nothing.
    stalled = socket.create_connection((host, port))
    stalled.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
    s, _, b = request("GET", "/healthz", auth=False)
    expect("served while a client stalls", s, 200, b)
    stalled.settimeout(idle + 10)
    started = time.monotonic()
    try:
        while stalled.recv(4096):
            pass
        waited = time.monotonic() - started
        if waited > idle + 5:
            failures.append(f"stalled client: closed after {waited:.1f} s, idle timeout {idle} s")
        else:
            print(f"ok  stalled client closed after {waited:.1f} s")
    except socket.timeout:
        failures.append("stalled client: never closed")
    stalled.close()

    s, _, b = request("GET", "/healthz", auth=False)
    expect("still serving", s, 200, b)
    s, _, b = request("POST", "/v1/events", event.replace(b"abuse-1", b"abuse-2"), ndjson)
    expect("still storing", s, 200, b)

    if failures:
        print("\n".join("FAIL " + f for f in failures))
        sys.exit(1)
    print("abuse.py: every hostile request got its 4xx and the server kept serving")


if __name__ == "__main__":
    main()
