"""The collector's peer for the load benchmark: the same route written the way a Python team would
write it with FastAPI and uvicorn.

POST /v1/events takes a JSON array or NDJSON body (gzip allowed), checks the bearer key against its
SHA-256 digest in constant time, validates every event with the contract's independent Python
implementation (tools/reference/funnel_reference.py: the same stages and reasons as Funnel), and
stores the valid ones in SQLite (WAL, synchronous=FULL, the same tables) with INSERT OR IGNORE on
(user_id, event_id), one transaction per request, committed before the answer
{"accepted", "duplicates", "quarantined"}. Run with `uvicorn --workers 2` (one process per core).

    FUNNEL_PEER_DB=events.db FUNNEL_PEER_KEY_SHA256=<hex> uvicorn peer_fastapi:app --workers 2 --port 18081
"""
import gzip
import hashlib
import hmac
import json
import os
import sqlite3
import sys
import threading
import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools", "reference"))
import funnel_reference as ref  # noqa: E402

DB = os.environ["FUNNEL_PEER_DB"]
KEY_DIGEST = bytes.fromhex(os.environ["FUNNEL_PEER_KEY_SHA256"])
MAX_BODY = 16 << 20
app = FastAPI()
local = threading.local()


def connection():
    c = getattr(local, "db", None)
    if c is None:
        c = sqlite3.connect(DB, timeout=60, isolation_level=None)
        c.execute("PRAGMA journal_mode=WAL")
        c.execute("PRAGMA synchronous=FULL")
        c.executescript("""
            CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, user_id TEXT NOT NULL, event_id TEXT NOT NULL,
                ts INTEGER NOT NULL, received_at INTEGER NOT NULL, line BLOB NOT NULL, UNIQUE (user_id, event_id));
            CREATE INDEX IF NOT EXISTS events_by_user ON events (user_id, seq);
            CREATE TABLE IF NOT EXISTS quarantine (id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL, reason TEXT NOT NULL,
                field TEXT, message TEXT NOT NULL, raw BLOB NOT NULL);
        """)
        local.db = c
    return c


def split(body):
    text = body.decode("utf-8")
    stripped = text.lstrip()
    if stripped.startswith("["):
        items = json.loads(stripped)
        return [(i, json.dumps(v, separators=(",", ":")), v, None) for i, v in enumerate(items)]
    out = []
    for i, line in enumerate(text.split("\n")):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            out.append((i, line, ref.parse_json_text(line), None))
        except ValueError:
            out.append((i, line, None, "invalid_json"))
    return out


@app.post("/v1/events")
async def events(request: Request):
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Bearer ") or not hmac.compare_digest(hashlib.sha256(auth[7:].encode()).digest(), KEY_DIGEST):
        return JSONResponse({"error": "the API key is not valid"}, status_code=401)
    body = await request.body()
    if len(body) > MAX_BODY:
        return JSONResponse({"error": "body too large"}, status_code=413)
    if request.headers.get("content-encoding") == "gzip":
        body = gzip.decompress(body)
    rows, quarantined = [], []
    for index, line, value, failure in split(body):
        if failure is None:
            try:
                event = ref.validate(value)
                rows.append((str(value["user_id"]), str(value["event_id"]), event["ts"], line))
                continue
            except ref.Quarantine as q:
                failure, field = q.reason, q.field
        else:
            field = None
        quarantined.append({"index": index, "reason": failure, "field": field, "raw": line})
    now = int(time.time() * 1000)
    c = connection()
    accepted = 0
    c.execute("BEGIN IMMEDIATE")
    try:
        for user, eid, ts, line in rows:
            cur = c.execute("INSERT OR IGNORE INTO events (user_id, event_id, ts, received_at, line) VALUES (?, ?, ?, ?, ?)",
                            (user, eid, ts, now, line.encode()))
            accepted += cur.rowcount
        for q in quarantined:
            c.execute("INSERT INTO quarantine (received_at, reason, field, message, raw) VALUES (?, ?, ?, ?, ?)",
                      (now, q["reason"], q["field"], q["reason"], q["raw"].encode()))
        c.execute("COMMIT")
    except Exception:
        c.execute("ROLLBACK")
        raise
    return {"accepted": accepted, "duplicates": len(rows) - accepted,
            "quarantined": [{k: q[k] for k in ("index", "reason", "field")} for q in quarantined]}
