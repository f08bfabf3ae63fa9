"""Builds the tiny ONNX models the ONNX backend is tested with (onnx's own helpers).

usage: tiny_model.py good OUT.onnx   -> out = (1 - rgb) * weights[vis] + edges * 0 + look[0] * 0
       tiny_model.py badinput OUT.onnx -> a model with an input outside the tensor contract
"""
import sys

import onnx
from onnx import TensorProto, helper


def good(path):
    rgb = helper.make_tensor_value_info("rgb", TensorProto.FLOAT, [1, 3, None, None])
    edges = helper.make_tensor_value_info("edges", TensorProto.FLOAT, [1, 1, None, None])
    weights = helper.make_tensor_value_info("weights", TensorProto.FLOAT, [1, 4])
    look = helper.make_tensor_value_info("look", TensorProto.FLOAT, [1, 16])
    out = helper.make_tensor_value_info("restyled", TensorProto.FLOAT, [1, 3, None, None])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    start = helper.make_tensor("start", TensorProto.INT64, [1], [3])
    end = helper.make_tensor("end", TensorProto.INT64, [1], [4])
    axis = helper.make_tensor("axis", TensorProto.INT64, [1], [1])
    shape4 = helper.make_tensor("shape4", TensorProto.INT64, [4], [1, 1, 1, 1])
    nodes = [
        helper.make_node("Sub", ["one", "rgb"], ["inv"]),
        helper.make_node("Slice", ["weights", "start", "end", "axis"], ["vis"]),
        helper.make_node("Reshape", ["vis", "shape4"], ["vis4"]),
        helper.make_node("Mul", ["inv", "vis4"], ["scaled"]),
        helper.make_node("Mul", ["edges", "zero"], ["e0"]),
        helper.make_node("Add", ["scaled", "e0"], ["with_edges"]),
        helper.make_node("ReduceSum", ["look"], ["lsum"], keepdims=0),
        helper.make_node("Mul", ["lsum", "zero"], ["l0"]),
        helper.make_node("Add", ["with_edges", "l0"], ["restyled"]),
    ]
    graph = helper.make_graph(nodes, "tiny", [rgb, edges, weights, look], [out], [one, zero, start, end, axis, shape4])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)


def badinput(path):
    x = helper.make_tensor_value_info("noise_level", TensorProto.FLOAT, [1])
    out = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["noise_level"], ["y"])], "bad", [x], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


{"good": good, "badinput": badinput}[sys.argv[1]](sys.argv[2])
