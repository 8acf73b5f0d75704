"""The web UI: static files from faasbox/web, served from memory under /ui/."""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

from faasbox.gateway.http import Scope, Send, respond

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
PREFIX = "/ui/"


class StaticUi:
    def __init__(self, root: Path = WEB_ROOT) -> None:
        # Read once at startup: the UI is small, and serving it never touches the disk.
        self.files: dict[str, tuple[bytes, bytes, bytes]] = {}
        for path in sorted(root.rglob("*")) if root.is_dir() else []:
            if path.is_file():
                rel = path.relative_to(root).as_posix()
                content = path.read_bytes()
                kind = mimetypes.guess_type(rel)[0] or "application/octet-stream"
                if kind.startswith("text/") or kind in ("application/javascript",):
                    kind += "; charset=utf-8"
                etag = f'"{hashlib.sha256(content).hexdigest()[:16]}"'.encode()
                self.files[rel] = (content, kind.encode(), etag)

    async def __call__(self, scope: Scope, send: Send) -> None:
        path: str = scope["path"]
        if path == "/ui":
            await redirect(send, PREFIX)
            return
        rel = path[len(PREFIX) :] or "index.html"
        found = self.files.get(rel)
        if found is None or scope["method"] not in ("GET", "HEAD"):
            await respond(send, 404, b"Not Found", b"text/plain; charset=utf-8")
            return
        content, kind, etag = found
        headers = [
            (b"etag", etag),
            (b"cache-control", b"no-cache"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        ]
        for name, value in scope["headers"]:
            if name == b"if-none-match" and value == etag:
                await respond(send, 304, b"", None, headers)
                return
        body = b"" if scope["method"] == "HEAD" else content
        await respond(send, 200, body, kind, headers)


async def redirect(send: Send, location: str) -> None:
    await respond(send, 302, b"", None, [(b"location", location.encode())])
