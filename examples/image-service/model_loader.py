"""One interface for an image model in ONNX (onnxruntime) or TFLite (ai-edge-litert) format.

    model = load()                      # MODEL_PATH, or the int8 EfficientNet-Lite0 shipped here
    logits = model.predict(batch)       # batch: float32 NCHW [1, 3, H, W], as MODEL.md builds it

The runtime is picked by the file's extension (`.onnx`, `.tflite`). `predict` adapts the batch
to what the model takes: NHWC layout (most TFLite image models), and integer input tensors
(quantized with the tensor's scale and zero point); an integer output is dequantized, so the
caller always gets float32.

Both runtimes run on one thread (intra-op and inter-op), with onnxruntime's spin-waiting off:
a worker serves one invocation at a time, and parallelism comes from running several workers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = HERE / "model" / "efficientnet_lite0_int8.onnx"
DEFAULT_LABELS = HERE / "model" / "imagenet_labels.txt"


class ModelError(Exception):
    """The model file cannot be used (missing, unknown extension, unexpected shape)."""


class Model(Protocol):
    path: Path
    runtime: str  # "onnxruntime" or "litert"
    input_shape: tuple[int, ...]  # as the model declares it
    input_dtype: np.dtype[Any]
    layout: str  # "NCHW" or "NHWC" ("other" for a TFLite model that takes no image)

    @property
    def input_size(self) -> tuple[int, int]:
        """(height, width) of the image the model takes."""
        ...

    def predict(self, batch: np.ndarray) -> np.ndarray:
        """The model's first output, float32, for a float32 NCHW batch."""
        ...


def model_path() -> Path:
    return Path(os.environ.get("MODEL_PATH") or DEFAULT_MODEL)


def labels_path() -> Path:
    return Path(os.environ.get("LABELS_PATH") or DEFAULT_LABELS)


def load(path: str | os.PathLike[str] | None = None, threads: int = 1) -> Model:
    """The model at `path` (default: MODEL_PATH, else the model shipped in model/)."""
    file = Path(path) if path is not None else model_path()
    if not file.is_file():
        raise ModelError(f"no model file at {file} (set MODEL_PATH to a .onnx or .tflite file)")
    suffix = file.suffix.lower()
    if suffix == ".onnx":
        return OnnxModel(file, threads)
    if suffix == ".tflite":
        return TfliteModel(file, threads)
    raise ModelError(f"{file}: unknown model format {suffix!r} (expected .onnx or .tflite)")


def load_labels(path: str | os.PathLike[str] | None = None) -> list[str]:
    file = Path(path) if path is not None else labels_path()
    return file.read_text(encoding="utf-8").splitlines()


def _layout(shape: tuple[int, ...]) -> str:
    if len(shape) != 4:
        raise ModelError(f"expected an image input [N, C, H, W] or [N, H, W, C], got {shape}")
    return "NHWC" if shape[3] in (1, 3, 4) and shape[1] not in (1, 3, 4) else "NCHW"


class _Base:
    path: Path
    input_shape: tuple[int, ...]
    layout: str

    @property
    def input_size(self) -> tuple[int, int]:
        if self.layout == "NCHW":
            return int(self.input_shape[2]), int(self.input_shape[3])
        return int(self.input_shape[1]), int(self.input_shape[2])

    def _arrange(self, batch: np.ndarray) -> np.ndarray:
        if self.layout == "NHWC":
            batch = batch.transpose(0, 2, 3, 1)
        return np.ascontiguousarray(batch, dtype=np.float32)


class OnnxModel(_Base):
    runtime = "onnxruntime"

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # No busy-waiting threads between requests: an idle worker uses no CPU.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.path = path
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        first = self.session.get_inputs()[0]
        if first.type != "tensor(float)":
            raise ModelError(f"{path}: input {first.name!r} is {first.type}, expected float")
        self.input_name = first.name
        self.output_name = self.session.get_outputs()[0].name
        self.input_shape = tuple(d if isinstance(d, int) else 1 for d in first.shape)
        self.input_dtype = np.dtype(np.float32)
        self.layout = _layout(self.input_shape)

    def predict(self, batch: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output_name], {self.input_name: self._arrange(batch)})[0]
        return np.asarray(out, dtype=np.float32)


class TfliteModel(_Base):
    runtime = "litert"

    def __init__(self, path: Path, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = path
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self._input = self.interpreter.get_input_details()[0]
        self._output = self.interpreter.get_output_details()[0]
        self.input_shape = tuple(int(d) for d in self._input["shape"])
        self.input_dtype = np.dtype(self._input["dtype"])
        self.layout = _layout(self.input_shape) if len(self.input_shape) == 4 else "other"

    @property
    def input_size(self) -> tuple[int, int]:
        if len(self.input_shape) != 4:
            raise ModelError(f"{self.path}: not an image model (input {self.input_shape})")
        return super().input_size

    def _arrange(self, batch: np.ndarray) -> np.ndarray:
        return super()._arrange(batch) if len(self.input_shape) == 4 else batch

    def predict(self, batch: np.ndarray) -> np.ndarray:
        x = self._arrange(np.asarray(batch, dtype=np.float32))
        scale, zero_point = self._input["quantization"]
        if self.input_dtype.kind in "iu" and scale:
            info = np.iinfo(self.input_dtype)
            x = np.clip(np.round(x / scale + zero_point), info.min, info.max)
        self.interpreter.set_tensor(self._input["index"], x.astype(self.input_dtype))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        scale, zero_point = self._output["quantization"]
        if out.dtype.kind in "iu" and scale:
            return ((out.astype(np.float32) - zero_point) * scale).astype(np.float32)
        return np.asarray(out, dtype=np.float32)
