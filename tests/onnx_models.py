"""Tiny ONNX models for tests, encoded by hand (the `onnx` package is not a dependency).

An ONNX file is a protobuf `ModelProto`; these few fields are all onnxruntime needs for a
graph of one node.
"""

from __future__ import annotations

FLOAT, UINT8, INT32, FLOAT16 = 1, 2, 6, 10  # onnx.TensorProto.DataType


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value: int | bytes | str) -> bytes:
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _value_info(name: str, elem_type: int, dims: list[int]) -> bytes:
    shape = b"".join(_field(1, _field(1, d)) for d in dims)  # TensorShapeProto.dim.dim_value
    tensor = _field(1, elem_type) + _field(2, shape)  # TypeProto.Tensor
    return _field(1, name) + _field(2, _field(1, tensor))  # ValueInfoProto{name, type}


def one_node_model(op: str, elem_type: int, dims: list[int], inputs: int = 2) -> bytes:
    """y = op(x, x) (or op(x) with inputs=1) over one tensor x of `dims`."""
    node = b"".join(_field(1, "x") for _ in range(inputs)) + _field(2, "y") + _field(4, op)
    graph = (
        _field(1, node)
        + _field(2, "g")
        + _field(11, _value_info("x", elem_type, dims))
        + _field(12, _value_info("y", elem_type, dims))
    )
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 7) + _field(7, graph) + _field(8, opset)
