"""The names of the first nodes of an ONNX file, read straight from its protobuf encoding.

Why: a recogniser exported from MXNet normalises its input inside the graph, and insightface tells
such a model by the names of its first 8 nodes (docs in arcface.py). onnxruntime does not expose node
names and the `onnx` package is not a runtime dependency, so this reads the few fields needed:
ModelProto.graph (field 7) -> GraphProto.node (field 1, repeated) -> NodeProto.name (field 3).
Every other field is skipped by its length, so a 250 MB recogniser costs a few small reads.
"""
from __future__ import annotations

import io
import pathlib

_VARINT, _FIXED64, _LENGTH, _FIXED32 = 0, 1, 2, 5
MODEL_GRAPH, GRAPH_NODE, NODE_NAME = 7, 1, 3


class NotAnOnnxFile(ValueError):
    """The bytes are not a protobuf message of the expected shape."""


def _varint(stream) -> int | None:
    """The next base-128 varint, or None at the end of the stream."""
    value, shift = 0, 0
    while True:
        byte = stream.read(1)
        if not byte:
            if shift:
                raise NotAnOnnxFile("the file ends inside a field")
            return None
        value |= (byte[0] & 0x7F) << shift
        if byte[0] < 0x80:
            return value
        shift += 7
        if shift > 63:
            raise NotAnOnnxFile("a varint longer than 10 bytes")


def _fields(stream, end: int):
    """(field number, wire type, payload length or None) of each field up to byte offset `end`,
    leaving the stream at the start of a length-delimited payload; the caller reads or skips it."""
    while stream.tell() < end:
        tag = _varint(stream)
        if tag is None:
            return
        number, wire = tag >> 3, tag & 7
        if wire == _VARINT:
            _varint(stream)
            yield number, wire, None
        elif wire == _FIXED64 or wire == _FIXED32:
            stream.seek(8 if wire == _FIXED64 else 4, io.SEEK_CUR)
            yield number, wire, None
        elif wire == _LENGTH:
            length = _varint(stream)
            if length is None or stream.tell() + length > end:
                raise NotAnOnnxFile("a field runs past the end of its message")
            yield number, wire, length
        else:
            raise NotAnOnnxFile(f"unsupported protobuf wire type {wire}")


def _node_name(payload: bytes) -> str:
    stream = io.BytesIO(payload)
    name = ""
    for number, wire, length in _fields(stream, len(payload)):
        if wire != _LENGTH:
            continue
        data = stream.read(length)
        if number == NODE_NAME:
            name = data.decode("utf-8", errors="replace")
    return name


def first_node_names(path: pathlib.Path, count: int = 8) -> list[str]:
    """The names of the graph's first `count` nodes, in the file's node order ('' for a nameless one)."""
    names: list[str] = []
    with open(path, "rb") as stream:
        size = stream.seek(0, io.SEEK_END)
        stream.seek(0)
        for number, wire, length in _fields(stream, size):
            if wire != _LENGTH:
                continue
            start = stream.tell()
            if number == MODEL_GRAPH:
                graph_end = start + length
                for field, field_wire, field_length in _fields(stream, graph_end):
                    if field_wire != _LENGTH:
                        continue
                    field_start = stream.tell()
                    if field == GRAPH_NODE:
                        names.append(_node_name(stream.read(field_length)))
                        if len(names) >= count:
                            return names
                    stream.seek(field_start + field_length)
                return names
            stream.seek(start + length)
    return names
