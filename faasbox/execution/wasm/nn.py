"""wasi-nn for WebAssembly functions: the `wasi_ephemeral_nn` imports as host functions.

wasmtime-py has no wasi-nn, so faasbox defines the witx ABI's six functions on its linkers
(`Linker.define_func`), as WasmEdge and wasmtime's own CLI provide them:

| import | arguments (all i32) | does |
|---|---|---|
| `load` | builders, builders_len, encoding, target, graph_out | a model from guest bytes |
| `load_by_name` | name, name_len, graph_out | a model named in `wasm.models` (already loaded) |
| `init_execution_context` | graph, context_out | a context to run that graph |
| `set_input` | context, index, tensor | a `tensor` struct: dims, type, data |
| `compute` | context | runs the model |
| `get_output` | context, index, buf, buf_max, written_out | copies an output's bytes |

Each returns an errno (`Errno`). Tensor types are witx's (f16=0, f32=1, u8=2, i32=3); graph
encodings onnx=1 and tensorflowlite=4 are supported, and autodetect=6 picks one by the
bytes; the target must be cpu (0) or auto (3).

Every pointer and size the guest passes is checked against its linear memory, and every
shape and byte count against the model: a bad one is an errno (`invalid_argument`), never
a trap or a fault of the server. A failure inside the backend is `runtime_error`.

Models named in serverless.yml (`wasm: {models: {mobilenet: model/x.onnx}}`) are loaded once
per code version (`Models`, keyed by the resolved file) and shared by every instance:
onnxruntime's `InferenceSession.run` is thread-safe, so instances only make their own
contexts. A TFLite interpreter is not, so each TFLite context gets its own interpreter
over the shared model bytes. Backends run with the threads of the function's share of the
machine (cores / its concurrency, at least 1).

The time `compute` takes counts against the invocation's timeout: an onnxruntime run still
going at the deadline is terminated (`RunOptions.terminate`, by the engines' ticker through
`Session.check_deadline`), and the guest, back in WebAssembly past its epoch deadline, is
then interrupted and the invocation times out as any other.
"""

from __future__ import annotations

import ctypes
import enum
import math
import os
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import wasmtime

MODULE = "wasi_ephemeral_nn"
MAX_RANK = 8
MAX_GRAPHS = 64  # per instance: graphs and contexts hold host memory
MAX_CONTEXTS = 64
MAX_BUILDERS = 16
_U32 = struct.Struct("<I")
_TENSOR = struct.Struct("<IIB3xII")  # dims ptr, dims len, type (u8, padded), data ptr, data len


class Errno(enum.IntEnum):
    SUCCESS = 0
    INVALID_ARGUMENT = 1
    INVALID_ENCODING = 2
    MISSING_MEMORY = 3
    BUSY = 4
    RUNTIME_ERROR = 5
    UNSUPPORTED_OPERATION = 6
    TOO_LARGE = 7
    NOT_FOUND = 8


class Encoding(enum.IntEnum):
    OPENVINO = 0
    ONNX = 1
    TENSORFLOW = 2
    PYTORCH = 3
    TENSORFLOWLITE = 4
    GGML = 5
    AUTODETECT = 6


TARGETS_ACCEPTED = (0, 3)  # cpu, auto
TENSOR_TYPES: dict[int, np.dtype[Any]] = {
    0: np.dtype("<f2"),
    1: np.dtype("<f4"),
    2: np.dtype("u1"),
    3: np.dtype("<i4"),
}
_ONNX_TYPES: dict[str, np.dtype[Any]] = {
    "tensor(float16)": np.dtype("<f2"),
    "tensor(float)": np.dtype("<f4"),
    "tensor(uint8)": np.dtype("u1"),
    "tensor(int32)": np.dtype("<i4"),
}


class NnError(Exception):
    """A call that fails with `errno`; the message goes to the function's log."""

    def __init__(self, errno: Errno, message: str) -> None:
        super().__init__(message)
        self.errno = errno


def threads_for(concurrency: int) -> int:
    """A function's share of the machine's cores: cores / its concurrency, at least 1."""
    return max(1, (os.cpu_count() or 1) // max(1, concurrency))


# -- backends ---------------------------------------------------------------------------------


class Graph:
    """A loaded model, shared by the instances of a code version."""

    name: str
    input_types: list[np.dtype[Any]]
    input_shapes: list[tuple[int | None, ...]]

    def context(self) -> Context:
        raise NotImplementedError


class Context:
    """One execution context: inputs set, outputs after compute."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.inputs: dict[int, np.ndarray] = {}
        self.outputs: list[np.ndarray] | None = None

    def run(self, session: Session) -> list[np.ndarray]:
        raise NotImplementedError


class OnnxGraph(Graph):
    def __init__(self, name: str, model: bytes | Path, threads: int) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # No threads spinning between requests: an idle function uses no CPU.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        source = str(model) if isinstance(model, Path) else model
        self.name = name
        self.session = ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.input_types = []
        for i in self.session.get_inputs():
            if i.type not in _ONNX_TYPES:
                raise NnError(Errno.UNSUPPORTED_OPERATION, f"input {i.name!r} is {i.type}")
            self.input_types.append(_ONNX_TYPES[str(i.type)])
        self.input_shapes = [
            tuple(d if isinstance(d, int) else None for d in i.shape)
            for i in self.session.get_inputs()
        ]

    def context(self) -> Context:
        return OnnxContext(self)


class OnnxContext(Context):
    graph: OnnxGraph

    def run(self, session: Session) -> list[np.ndarray]:
        import onnxruntime as ort

        feeds = {self.graph.input_names[i]: x for i, x in self.inputs.items()}
        options = ort.RunOptions()
        session.running = options
        try:
            if session.past_deadline():
                raise NnError(Errno.RUNTIME_ERROR, "compute: the invocation's time is up")
            outputs = self.graph.session.run(self.graph.output_names, feeds, options)
        except NnError:
            raise
        except Exception as e:  # onnxruntime's own errors carry no common base class
            raise NnError(Errno.RUNTIME_ERROR, f"compute: {_first_line(e)}") from None
        finally:
            session.running = None
        return [np.ascontiguousarray(o) for o in outputs]


class TfliteGraph(Graph):
    def __init__(self, name: str, model: bytes, threads: int) -> None:
        self.name = name
        self.model = model
        self.threads = threads
        probe = self._interpreter()  # checks the model now, not at the first context
        self.input_types = [np.dtype(d["dtype"]) for d in probe.get_input_details()]
        self.input_shapes = [tuple(int(n) for n in d["shape"]) for d in probe.get_input_details()]

    def _interpreter(self) -> Any:
        try:
            from ai_edge_litert.interpreter import Interpreter  # type: ignore[import-untyped]
        except ImportError:
            raise NnError(
                Errno.UNSUPPORTED_OPERATION, "TFLite models need ai-edge-litert installed"
            ) from None
        interpreter = Interpreter(model_content=self.model, num_threads=self.threads)
        interpreter.allocate_tensors()
        return interpreter

    def context(self) -> Context:
        return TfliteContext(self, self._interpreter())


class TfliteContext(Context):
    graph: TfliteGraph

    def __init__(self, graph: TfliteGraph, interpreter: Any) -> None:
        super().__init__(graph)
        self.interpreter = interpreter

    def run(self, session: Session) -> list[np.ndarray]:
        details = self.interpreter.get_input_details()
        try:
            for i, x in self.inputs.items():
                self.interpreter.set_tensor(details[i]["index"], x)
            self.interpreter.invoke()
            return [
                np.ascontiguousarray(self.interpreter.get_tensor(d["index"]))
                for d in self.interpreter.get_output_details()
            ]
        except Exception as e:  # litert raises RuntimeError/ValueError with its reason
            raise NnError(Errno.RUNTIME_ERROR, f"compute: {_first_line(e)}") from None


def is_tflite(model: bytes) -> bool:
    return model[4:8] == b"TFL3"  # a TFLite flatbuffer's file identifier


def load_graph(name: str, model: bytes, encoding: int, threads: int) -> Graph:
    if encoding == Encoding.AUTODETECT:
        encoding = Encoding.TENSORFLOWLITE if is_tflite(model) else Encoding.ONNX
    try:
        if encoding == Encoding.ONNX:
            return OnnxGraph(name, model, threads)
        if encoding == Encoding.TENSORFLOWLITE:
            return TfliteGraph(name, model, threads)
    except NnError:
        raise
    except Exception as e:
        reason = _first_line(e)
        raise NnError(Errno.INVALID_ARGUMENT, f"load: not a usable model: {reason}") from None
    raise NnError(
        Errno.INVALID_ENCODING,
        f"load: graph encoding {encoding} is not supported (onnx=1, tensorflowlite=4, "
        "autodetect=6)",
    )


class ModelError(Exception):
    """A model named in `wasm.models` cannot be loaded."""


class Models:
    """The models of `wasm.models`, loaded once per file (a code version's files never
    change: the code store is content-addressed) and shared by every instance."""

    def __init__(self) -> None:
        self._graphs: dict[tuple[Path, int], Graph] = {}
        self._lock = threading.Lock()

    def get(self, name: str, path: Path, concurrency: int) -> tuple[Graph, float]:
        """The model at `path`, and the milliseconds this call spent loading it (0.0 when
        it was loaded already)."""
        threads = threads_for(concurrency)
        key = (path, threads)
        graph = self._graphs.get(key)
        if graph is not None:
            return graph, 0.0
        started = time.perf_counter()
        with self._lock:  # loads are rare (once per code version): one at a time is enough
            graph = self._graphs.get(key)
            if graph is None:
                try:
                    data = path.read_bytes()
                except OSError as e:
                    raise ModelError(
                        f"wasm.models: {name}: cannot read {path.name}: {e.strerror}"
                    ) from None
                encoding = Encoding.AUTODETECT
                try:
                    graph = load_graph(name, data, encoding, threads)
                except NnError as e:
                    raise ModelError(f"wasm.models: {name}: {path.name}: {e}") from None
                self._graphs[key] = graph
            return graph, (time.perf_counter() - started) * 1000

    def forget(self, code_dir: Path) -> None:
        root = code_dir.resolve()
        with self._lock:
            for key in [k for k in self._graphs if root in k[0].parents]:
                del self._graphs[key]


# -- one invocation's state ----------------------------------------------------------------


@dataclass(eq=False)  # compared (and hashed) by identity: kept in a set while it runs
class Session:
    """An instance's graphs and contexts (ids are indexes), its named models and deadline."""

    named: dict[str, Graph] = field(default_factory=dict)
    deadline: float = float("inf")  # time.monotonic()
    threads: int = 1
    notes: list[str] = field(default_factory=list)  # for the function's log
    graphs: list[Graph] = field(default_factory=list)
    contexts: list[Context] = field(default_factory=list)
    running: Any = None  # onnxruntime RunOptions of a compute in progress

    def past_deadline(self) -> bool:
        return time.monotonic() >= self.deadline

    def check_deadline(self) -> None:
        """Called by the engines' ticker: stop a compute that has run past the deadline."""
        running = self.running
        if running is not None and self.past_deadline():
            running.terminate = True


class _Current(threading.local):
    session: Session | None = None


current = _Current()
_sessions: set[Session] = set()  # of running instances, for the ticker


def bind(session: Session) -> None:
    current.session = session
    _sessions.add(session)


def unbind() -> None:
    if current.session is not None:
        _sessions.discard(current.session)
    current.session = None


def check_deadlines() -> None:
    for session in list(_sessions):
        session.check_deadline()


# -- guest memory --------------------------------------------------------------------------


class GuestMemory:
    """The caller's linear memory, every access bounds-checked (pointers are unsigned)."""

    def __init__(self, caller: wasmtime.Caller) -> None:
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise NnError(Errno.MISSING_MEMORY, "the module exports no memory")
        self.caller = caller
        self.memory = memory
        self.size = memory.data_len(caller)

    def _span(self, ptr: int, length: int) -> int:
        ptr &= 0xFFFFFFFF
        if length < 0 or ptr + length > self.size:
            raise NnError(
                Errno.INVALID_ARGUMENT,
                f"{length} bytes at {ptr:#x} lie outside the guest's memory ({self.size} bytes)",
            )
        return ptr

    def read(self, ptr: int, length: int) -> bytes:
        start = self._span(ptr, length)
        if length == 0:
            return b""
        base = ctypes.addressof(self.memory.data_ptr(self.caller).contents)
        return ctypes.string_at(base + start, length)

    def write(self, ptr: int, data: bytes) -> None:
        start = self._span(ptr, len(data))
        if data:
            base = ctypes.addressof(self.memory.data_ptr(self.caller).contents)
            ctypes.memmove(base + start, data, len(data))

    def u32(self, ptr: int) -> int:
        value: int = _U32.unpack(self.read(ptr, 4))[0]
        return value

    def put_u32(self, ptr: int, value: int) -> None:
        self.write(ptr, _U32.pack(value))


# -- the host functions --------------------------------------------------------------------


def _session() -> Session:
    session = current.session
    if session is None:  # wasi-nn called outside an invocation: cannot happen in faasbox
        raise NnError(Errno.RUNTIME_ERROR, "no invocation is running on this thread")
    return session


def _graph(session: Session, graph_id: int) -> Graph:
    graph_id &= 0xFFFFFFFF
    if graph_id >= len(session.graphs):
        raise NnError(Errno.INVALID_ARGUMENT, f"no graph {graph_id}")
    return session.graphs[graph_id]


def _context(session: Session, context_id: int) -> Context:
    context_id &= 0xFFFFFFFF
    if context_id >= len(session.contexts):
        raise NnError(Errno.INVALID_ARGUMENT, f"no execution context {context_id}")
    return session.contexts[context_id]


def _add_graph(session: Session, memory: GuestMemory, graph: Graph, graph_out: int) -> None:
    if len(session.graphs) >= MAX_GRAPHS:
        raise NnError(Errno.TOO_LARGE, f"more than {MAX_GRAPHS} graphs in one invocation")
    memory._span(graph_out, 4)  # checked before the graph is kept
    session.graphs.append(graph)
    memory.put_u32(graph_out, len(session.graphs) - 1)


def load(
    caller: wasmtime.Caller, builders: int, count: int, encoding: int, target: int, graph_out: int
) -> None:
    session, memory = _session(), GuestMemory(caller)
    count &= 0xFFFFFFFF
    if count == 0 or count > MAX_BUILDERS:
        raise NnError(Errno.INVALID_ARGUMENT, f"load: {count} graph builders")
    if target not in TARGETS_ACCEPTED:
        raise NnError(Errno.UNSUPPORTED_OPERATION, f"load: execution target {target} (cpu only)")
    raw = memory.read(builders, count * 8)
    parts = [memory.read(*struct.unpack_from("<II", raw, 8 * i)) for i in range(count)]
    graph = load_graph("(bytes)", b"".join(parts), encoding, session.threads)
    _add_graph(session, memory, graph, graph_out)


def load_by_name(caller: wasmtime.Caller, name_ptr: int, name_len: int, graph_out: int) -> None:
    session, memory = _session(), GuestMemory(caller)
    name = memory.read(name_ptr, name_len).decode("utf-8", "replace")
    graph = session.named.get(name)
    if graph is None:
        known = ", ".join(sorted(session.named)) or "none: see wasm.models"
        raise NnError(Errno.NOT_FOUND, f"load_by_name: no model {name!r} (known: {known})")
    _add_graph(session, memory, graph, graph_out)


def init_execution_context(caller: wasmtime.Caller, graph_id: int, context_out: int) -> None:
    session, memory = _session(), GuestMemory(caller)
    graph = _graph(session, graph_id)
    if len(session.contexts) >= MAX_CONTEXTS:
        raise NnError(Errno.TOO_LARGE, f"more than {MAX_CONTEXTS} contexts in one invocation")
    memory._span(context_out, 4)
    session.contexts.append(graph.context())
    memory.put_u32(context_out, len(session.contexts) - 1)


def set_input(caller: wasmtime.Caller, context_id: int, index: int, tensor: int) -> None:
    session, memory = _session(), GuestMemory(caller)
    context = _context(session, context_id)
    graph = context.graph
    if not 0 <= index < len(graph.input_types):
        raise NnError(Errno.INVALID_ARGUMENT, f"set_input: the model has no input {index}")
    dims_ptr, rank, type_code, data_ptr, data_len = _TENSOR.unpack(memory.read(tensor, 20))
    dtype = TENSOR_TYPES.get(type_code)
    if dtype is None:
        raise NnError(Errno.INVALID_ARGUMENT, f"set_input: unknown tensor type {type_code}")
    if rank == 0 or rank > MAX_RANK:
        raise NnError(Errno.INVALID_ARGUMENT, f"set_input: rank {rank} (1 to {MAX_RANK})")
    dims = struct.unpack(f"<{rank}I", memory.read(dims_ptr, 4 * rank))
    expected = graph.input_types[index]
    if dtype != expected:
        raise NnError(
            Errno.INVALID_ARGUMENT, f"set_input: input {index} takes {expected}, got {dtype}"
        )
    shape = graph.input_shapes[index]
    fits = len(shape) == rank and all(
        want is None or want == got for want, got in zip(shape, dims, strict=True)
    )
    if not fits:
        wanted = "x".join("?" if d is None else str(d) for d in shape)
        raise NnError(
            Errno.INVALID_ARGUMENT,
            f"set_input: input {index} is {wanted}, got {'x'.join(map(str, dims))}",
        )
    size = math.prod(dims) * dtype.itemsize
    if data_len != size:
        raise NnError(
            Errno.INVALID_ARGUMENT,
            f"set_input: a {'x'.join(map(str, dims))} {dtype} tensor is {size} bytes, "
            f"got {data_len}",
        )
    data = memory.read(data_ptr, data_len)
    context.inputs[index] = np.frombuffer(data, dtype=dtype).reshape(dims)
    context.outputs = None


def compute(caller: wasmtime.Caller, context_id: int) -> None:
    session = _session()
    context = _context(session, context_id)
    missing = [i for i in range(len(context.graph.input_types)) if i not in context.inputs]
    if missing:
        raise NnError(Errno.INVALID_ARGUMENT, f"compute: input {missing[0]} is not set")
    context.outputs = context.run(session)


def get_output(
    caller: wasmtime.Caller, context_id: int, index: int, buf: int, buf_max: int, written_out: int
) -> None:
    session, memory = _session(), GuestMemory(caller)
    context = _context(session, context_id)
    if context.outputs is None:
        raise NnError(Errno.INVALID_ARGUMENT, "get_output: compute has not run")
    if not 0 <= index < len(context.outputs):
        raise NnError(Errno.INVALID_ARGUMENT, f"get_output: the model has no output {index}")
    data = context.outputs[index].tobytes()
    buf_max &= 0xFFFFFFFF
    if len(data) > buf_max:
        raise NnError(
            Errno.TOO_LARGE, f"get_output: output {index} is {len(data)} bytes, buffer {buf_max}"
        )
    memory._span(buf, len(data))
    memory._span(written_out, 4)
    memory.write(buf, data)
    memory.put_u32(written_out, len(data))


_IMPORTS: dict[str, tuple[Callable[..., None], int]] = {
    "load": (load, 5),
    "load_by_name": (load_by_name, 3),
    "init_execution_context": (init_execution_context, 2),
    "set_input": (set_input, 3),
    "compute": (compute, 1),
    "get_output": (get_output, 5),
}


def _host(function: Callable[..., None]) -> Callable[..., int]:
    """The errno of `function`: 0, or its NnError's; anything else is the backend's fault
    (`runtime_error`), logged, and never a trap."""

    def call(caller: wasmtime.Caller, *args: int) -> int:
        try:
            function(caller, *args)
            return Errno.SUCCESS
        except NnError as e:
            _log(f"wasi-nn {function.__name__}: {e} (errno {e.errno.name.lower()})")
            return e.errno
        except Exception as e:
            _log(f"wasi-nn {function.__name__}: {type(e).__name__}: {_first_line(e)}")
            return Errno.RUNTIME_ERROR

    return call


def _log(line: str) -> None:
    session = current.session
    if session is not None and len(session.notes) < 100:
        session.notes.append(line)


def define(linker: wasmtime.Linker) -> None:
    i32 = wasmtime.ValType.i32()
    for name, (function, arity) in _IMPORTS.items():
        linker.define_func(
            MODULE,
            name,
            wasmtime.FuncType([i32] * arity, [i32]),
            _host(function),
            access_caller=True,
        )


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
