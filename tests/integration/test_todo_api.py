"""examples/todo-api on a real server: CRUD through the Dapr SDK on the (SQLite) state store,
and the same through psycopg on a real PostgreSQL from DATABASE_URL."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import psycopg
import pytest

from tests.postgres import PostgresServer
from tests.support import EXAMPLES, ROOT, RunningServer


@pytest.fixture(scope="module")
def todo_server(postgres: PostgresServer) -> Iterator[tuple[RunningServer, str]]:
    data_dir = ROOT / "build" / "test-data" / uuid.uuid4().hex[:12]
    database = postgres.database("todo_api")
    url = postgres.url("todo_api")
    server = RunningServer(
        [EXAMPLES / "todo-api"], data_dir, "--dapr-http-port", "0", "--dapr-grpc-port", "0"
    ).start(env={"DATABASE_URL": url})
    try:
        yield server, database
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.mark.parametrize("prefix", ["/todos", "/pg/todos"])
def test_crud(todo_server: tuple[RunningServer, str], prefix: str) -> None:
    server, _ = todo_server
    base = f"{server.url}{prefix}"
    with httpx.Client(timeout=30) as http:
        tea = http.post(base, json={"title": "buy tea"})
        assert tea.status_code == 201, tea.text
        todo = tea.json()
        assert todo["title"] == "buy tea" and todo["done"] is False
        http.post(base, json={"title": "write docs"})
        titles = sorted(t["title"] for t in http.get(base).json())
        assert titles[:2] == ["buy tea", "write docs"]
        assert http.get(f"{base}/{todo['id']}").json() == todo
        done = http.put(f"{base}/{todo['id']}", json={"done": True})
        assert done.status_code == 200 and done.json()["done"] is True
        assert http.get(f"{base}/{todo['id']}").json()["done"] is True
        assert http.delete(f"{base}/{todo['id']}").status_code == 204
        assert http.get(f"{base}/{todo['id']}").status_code == 404
        assert todo["id"] not in [t["id"] for t in http.get(base).json()]
        bad = http.post(base, json={"name": "no title"})
        assert bad.status_code == 400 and "title" in bad.json()["error"]


def test_concurrent_creates_keep_every_todo(todo_server: tuple[RunningServer, str]) -> None:
    """8 clients create at once: the index of ids, guarded by its etag, loses none."""
    server, _ = todo_server
    titles = [f"parallel {i}" for i in range(8)]
    with httpx.Client(timeout=60) as http, ThreadPoolExecutor(8) as pool:
        created = list(
            pool.map(lambda t: http.post(f"{server.url}/todos", json={"title": t}), titles)
        )
        assert [r.status_code for r in created] == [201] * 8
        listed = {t["title"] for t in http.get(f"{server.url}/todos").json()}
    assert set(titles) <= listed


def test_pg_todos_are_rows_of_the_database(todo_server: tuple[RunningServer, str]) -> None:
    server, database = todo_server
    made = httpx.post(f"{server.url}/pg/todos", json={"title": "in postgres"}, timeout=30).json()
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT title, done FROM todos WHERE id = %s", (made["id"],)).fetchone()
    assert row == ("in postgres", False)
