"""Code by hash: a function's code (and its merged layers) reach a node once.

The gateway packs each folder into a tar the first time an environment needs it and puts it
in Ray's object store once (`CodeShipper`); environments get the object's reference inside a
list, so Ray does not fetch it for them. On the node, `node_copy` unpacks it into the node's
cache under its digest, once: an environment that finds the digest there never fetches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import io
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray


@dataclass(frozen=True)
class Bundle:
    """A folder as environments receive it: its digest and the object holding its tar."""

    digest: str
    ref: list[Any]  # [ObjectRef]: in a list, so an actor's argument is not fetched for it


def pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(folder, arcname=".")
    return buffer.getvalue()


class CodeShipper:
    """The gateway's bundles, one per digest, put in the object store once."""

    def __init__(self) -> None:
        self._bundles: dict[str, Bundle] = {}
        self._packing: dict[str, asyncio.Future[Bundle]] = {}

    async def bundle(self, digest: str, folder: Path) -> Bundle:
        found = self._bundles.get(digest)
        if found is not None:
            return found
        packing = self._packing.get(digest)
        if packing is None:  # the first environment to need it packs it; the others wait
            packing = asyncio.ensure_future(self._put(digest, folder))
            self._packing[digest] = packing
            packing.add_done_callback(lambda _: self._packing.pop(digest, None))
        return await asyncio.shield(packing)

    async def _put(self, digest: str, folder: Path) -> Bundle:
        data = await asyncio.to_thread(pack, folder)
        bundle = Bundle(digest, [ray.put(data)])
        self._bundles[digest] = bundle
        return bundle

    def forget(self, keep: set[str]) -> None:
        """Drop the bundles no deployed function uses (their objects are freed)."""
        for digest in [d for d in self._bundles if d not in keep]:
            del self._bundles[digest]


def node_cache(node_id: str) -> Path:
    """The node's cache of unpacked code (per node id: tests run two nodes on one machine)."""
    path = Path(tempfile.gettempdir()) / "faasbox-ray" / node_id[:16]
    path.mkdir(parents=True, exist_ok=True, mode=0o755)
    return path


async def node_copy(bundle: Bundle, cache: Path) -> Path:
    """The bundle's folder on this node: unpacked now unless another environment did."""
    target = cache / "code" / bundle.digest
    if target.is_dir():
        return target
    data = await bundle.ref[0]  # fetched from the node that has it
    return await asyncio.to_thread(_unpack, data, target)


def _unpack(data: bytes, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # environments of one node unpack it once
        if target.is_dir():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                tar.extractall(staging, filter="tar")
            os.chmod(staging, 0o755)
            staging.rename(target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(staging)
    return target
