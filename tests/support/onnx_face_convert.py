"""Graph rewrites that let the unmodified insightface 0.7.3 loader run OpenCV-Zoo's SFace and YuNet.

insightface routes ONNX files by signature and normalises inputs its own way (docs/development.md,
"Test faces and face models"):
- SFace lists stale graph inputs (old weight names) that onnxruntime would demand at run time, and
  its own normalisation (`_minusscalar0`, `_mulscalar0`) sits deep in the node list, where
  insightface's "first 8 nodes" check misses it and would normalise twice.
- YuNet's int8 weights use DequantizeLinear with `block_size`, which onnxruntime rejects for its
  per-tensor blocks; it has 12 outputs (cls/obj/bbox/kps per stride) where insightface wants the
  9-output SCRFD layout; and it expects raw BGR 0-255 where insightface feeds (RGB - 127.5) / 128.
"""
from __future__ import annotations

import numpy as np

STRIDES = (8, 16, 32)
NUM_ANCHORS = 2
SFACE_NORMALISATION = ("_minusscalar0", "_mulscalar0")
YUNET_INPUT = "input"
NEW_INPUT = "input.1"


def _replace(repeated, items) -> None:
    """Set a protobuf repeated field to `items` (copied first: they may be its own elements)."""
    copies = []
    for item in items:
        copy = type(item)()
        copy.CopyFrom(item)
        copies.append(copy)
    del repeated[:]
    repeated.extend(copies)


def _consumed(graph) -> set[str]:
    names = {name for node in graph.node for name in node.input}
    names.update(out.name for out in graph.output)
    return names


def drop_unused_inputs(model):
    """Remove graph inputs that no node reads, and inputs that merely shadow an initialiser."""
    graph = model.graph
    used = _consumed(graph)
    initialisers = {t.name for t in graph.initializer}
    _replace(graph.input, [i for i in graph.input if i.name in used and i.name not in initialisers])
    return model


def drop_unused_initialisers(model):
    graph = model.graph
    used = _consumed(graph)
    _replace(graph.initializer, [t for t in graph.initializer if t.name in used])
    return model


def move_nodes_first(model, names) -> None:
    """Put the named nodes at the front, in the given order (they must read only graph inputs
    and initialisers, so the order stays topological)."""
    graph = model.graph
    by_name = {node.name: node for node in graph.node}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"nodes not in the graph: {missing}")
    front = [by_name[n] for n in names]
    rest = [node for node in graph.node if node.name not in set(names)]
    _replace(graph.node, front + rest)


def convert_sface(model):
    """SFace as an insightface recogniser: stale inputs gone, its mean/std nodes first (so
    insightface feeds raw 0-255 RGB and lets the model normalise)."""
    drop_unused_inputs(model)
    move_nodes_first(model, SFACE_NORMALISATION)
    return model


def _dequantised(values, scale, zero_point, axis: int, block: int) -> np.ndarray:
    """y = (x - zero_point) * scale, each scale covering `block` entries along `axis`."""
    x = values.astype(np.float32)
    zp = np.zeros_like(scale) if zero_point is None else zero_point.astype(np.float32)
    if scale.size > 1 and scale.shape != x.shape:
        axis = axis % x.ndim
        scale = np.repeat(scale, block, axis=axis).take(range(x.shape[axis]), axis=axis)
        zp = np.repeat(zp, block, axis=axis).take(range(x.shape[axis]), axis=axis)
    return ((x - zp) * scale).astype(np.float32)


def fold_block_dequantize(model):
    """Replace every DequantizeLinear whose inputs are all constants by an fp32 initialiser."""
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    kept = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or not all(i in constants for i in node.input if i):
            kept.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        arrays = [numpy_helper.to_array(constants[i]) if i else None for i in node.input]
        values, scale = arrays[0], arrays[1]
        zero_point = arrays[2] if len(arrays) > 2 else None
        folded = _dequantised(values, scale.astype(np.float32), zero_point,
                              attrs.get("axis", 1), attrs.get("block_size", 0))
        graph.initializer.append(numpy_helper.from_array(folded, node.output[0]))
    _replace(graph.node, kept)
    return drop_unused_initialisers(model)


def _const(graph, name: str, array) -> str:
    from onnx import numpy_helper
    graph.initializer.append(numpy_helper.from_array(np.asarray(array), name))
    return name


def _scrfd_head(graph, stride: int) -> list:
    """Nodes that turn YuNet's outputs at one stride into SCRFD's score/bbox/kps, one row per
    anchor pair member."""
    from onnx import helper

    s = str(stride)
    node = helper.make_node
    nodes = [
        node("Clip", [f"cls_{s}", "zero_f", "one_f"], [f"cls_c{s}"]),
        node("Clip", [f"obj_{s}", "zero_f", "one_f"], [f"obj_c{s}"]),
        node("Mul", [f"cls_c{s}", f"obj_c{s}"], [f"co_{s}"]),
        node("Sqrt", [f"co_{s}"], [f"score1_{s}"]),
        # bbox (dx, dy, w, h) in stride units -> distances (left, top, right, bottom)
        node("Split", [f"bbox_{s}", "split_2_2"], [f"dxdy_{s}", f"logwh_{s}"], axis=2),
        node("Exp", [f"logwh_{s}"], [f"wh_{s}"]),
        node("Mul", [f"wh_{s}", "half_f"], [f"halfwh_{s}"]),
        node("Sub", [f"halfwh_{s}", f"dxdy_{s}"], [f"lt_{s}"]),
        node("Add", [f"dxdy_{s}", f"halfwh_{s}"], [f"rb_{s}"]),
        node("Concat", [f"lt_{s}", f"rb_{s}"], [f"dist1_{s}"], axis=2),
    ]
    for kind, source, width in (("score", f"score1_{s}", 1), ("bbox", f"dist1_{s}", 4),
                                ("kps", f"kps_{s}", 10)):
        # [1, K, C] -> [K, 1, C] -> [K, 2, C] -> [2K, C]: each anchor row twice
        nodes += [node("Reshape", [source, f"shape_k1_{width}"], [f"{kind}_k1_{s}"]),
                  node("Concat", [f"{kind}_k1_{s}"] * NUM_ANCHORS, [f"{kind}_k2_{s}"], axis=1),
                  node("Reshape", [f"{kind}_k2_{s}", f"shape_rows_{width}"], [f"{kind}_{s}_out"])]
    return nodes


def convert_yunet(model):
    """YuNet as an insightface SCRFD detector (9 outputs, 2 anchors, keypoints), fed the way
    insightface feeds a detector."""
    from onnx import TensorProto, helper

    fold_block_dequantize(model)
    graph = model.graph
    if [i.name for i in graph.input] != [YUNET_INPUT]:
        raise ValueError(f"unexpected YuNet inputs {[i.name for i in graph.input]}")
    shape = [d.dim_value or d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
    _const(graph, "zero_f", np.float32(0.0))
    _const(graph, "one_f", np.float32(1.0))
    _const(graph, "half_f", np.float32(0.5))
    _const(graph, "split_2_2", np.array([2, 2], np.int64))
    _const(graph, "std_f", np.float32(128.0))
    _const(graph, "mean_f", np.float32(127.5))
    _const(graph, "rgb_to_bgr", np.array([2, 1, 0], np.int64))
    for width in (1, 4, 10):
        _const(graph, f"shape_k1_{width}", np.array([-1, 1, width], np.int64))
        _const(graph, f"shape_rows_{width}", np.array([-1, width], np.int64))
    # insightface gives (RGB - 127.5) / 128; YuNet wants BGR 0-255
    prologue = [helper.make_node("Mul", [NEW_INPUT, "std_f"], ["pre_scaled"]),
                helper.make_node("Add", ["pre_scaled", "mean_f"], ["pre_rgb"]),
                helper.make_node("Gather", ["pre_rgb", "rgb_to_bgr"], [YUNET_INPUT], axis=1)]
    epilogue = [n for stride in STRIDES for n in _scrfd_head(graph, stride)]
    _replace(graph.node, prologue + list(graph.node) + epilogue)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(NEW_INPUT, TensorProto.FLOAT, shape))
    del graph.output[:]
    for kind, width in (("score", 1), ("bbox", 4), ("kps", 10)):
        for stride in STRIDES:
            graph.output.append(helper.make_tensor_value_info(
                f"{kind}_{stride}_out", TensorProto.FLOAT, [None, width]))
    del graph.value_info[:]  # stale shapes of the old outputs
    return model
