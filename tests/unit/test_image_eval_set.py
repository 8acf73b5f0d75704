"""The classifier's labelled evaluation set (examples/image-service/model/eval_photos.json) is
well formed: enough photos, every label a real ImageNet class, every photo from a pinned
package. The measurement itself (evaluate.py) is a report, not a test."""

from __future__ import annotations

import json
from pathlib import Path

MODEL = Path(__file__).resolve().parents[2] / "examples" / "image-service" / "model"


def test_the_set_has_thirty_labelled_photos_from_pinned_packages() -> None:
    spec = json.loads((MODEL / "eval_photos.json").read_text(encoding="utf-8"))
    names = [
        line.split(", ", 1)[0]
        for line in (MODEL / "imagenet_labels.txt").read_text(encoding="utf-8").splitlines()
    ]
    photos = spec["photos"]
    assert len(photos) >= 30
    assert len({p["name"] for p in photos}) == len(photos)
    assert len({(p["package"], p["member"]) for p in photos}) == len(photos)
    for p in photos:
        assert p["labels"], p["name"]
        assert set(p["labels"]) <= set(names), (p["name"], set(p["labels"]) - set(names))
        package = spec["packages"][p["package"]]
        assert package["kind"] in ("wheel", "deb")
        assert package["version"][0].isdigit()
