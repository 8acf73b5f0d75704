"""Todos in PostgreSQL, directly with psycopg, from DATABASE_URL (the way a service backed by
its own database is written anywhere)."""

import json
import os
import uuid

import psycopg

SCHEMA = (
    "CREATE TABLE IF NOT EXISTS todos "
    "(id TEXT PRIMARY KEY, title TEXT NOT NULL, done BOOLEAN NOT NULL DEFAULT false)"
)
_conn = None


def _response(status, body=None):
    return {
        "statusCode": status,
        "headers": {"content-type": "application/json"},
        "body": "" if body is None else json.dumps(body),
    }


def _db():
    """One connection per worker, made on first use and kept across invocations."""
    global _conn
    if _conn is None or _conn.closed:
        _conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True, connect_timeout=5)
        _conn.execute(SCHEMA)
    return _conn


def _todo(row):
    return {"id": row[0], "title": row[1], "done": row[2]}


def handle(event, context):
    if not os.environ.get("DATABASE_URL"):
        return _response(503, {"error": "set DATABASE_URL to a PostgreSQL database and redeploy"})
    method = event["requestContext"]["http"]["method"]
    todo_id = (event.get("pathParameters") or {}).get("id")
    try:
        body = json.loads(event.get("body") or "null")
    except ValueError:
        return _response(400, {"error": "the body is not JSON"})
    db = _db()
    if todo_id is None and method == "GET":
        rows = db.execute("SELECT id, title, done FROM todos ORDER BY title").fetchall()
        return _response(200, [_todo(r) for r in rows])
    if todo_id is None and method == "POST":
        if not isinstance(body, dict) or "title" not in body:
            return _response(400, {"error": 'expected {"title": "..."}'})
        row = db.execute(
            "INSERT INTO todos (id, title) VALUES (%s, %s) RETURNING id, title, done",
            (uuid.uuid4().hex[:12], str(body["title"])),
        ).fetchone()
        return _response(201, _todo(row))
    if method == "GET":
        row = db.execute("SELECT id, title, done FROM todos WHERE id = %s", (todo_id,)).fetchone()
    elif method == "PUT":
        if not isinstance(body, dict):
            return _response(400, {"error": "expected a JSON object of changes"})
        row = db.execute(
            "UPDATE todos SET title = COALESCE(%s, title), done = COALESCE(%s, done) "
            "WHERE id = %s RETURNING id, title, done",
            (body.get("title"), body.get("done"), todo_id),
        ).fetchone()
    else:
        row = db.execute("DELETE FROM todos WHERE id = %s RETURNING id", (todo_id,)).fetchone()
        if row is not None:
            return _response(204)
    if row is None:
        return _response(404, {"error": f"no todo {todo_id}"})
    return _response(200, _todo(row))
