"""Pictures and listings of the tape: DOT text, SVG with and without Graphviz, PNG through
Graphviz (or a clear error), Theano-style listings, notebook display, PyTorch-like reprs."""

from __future__ import annotations

import gc
import re
import shutil
import weakref
import xml.etree.ElementTree as ET

import pytest

import tapegrad
from tapegrad import viz

HAS_DOT = shutil.which("dot") is not None


def _mlp():
    tapegrad.manual_seed(0)
    nn = tapegrad.nn
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    x = tapegrad.randn(5, 3)
    loss = nn.functional.cross_entropy(model(x), tapegrad.tensor([0, 1, 0, 1, 1]))
    return model, loss, dict(model.named_parameters())


def _simple():
    x = tapegrad.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = tapegrad.tensor([0.5, 0.5, 0.5], requires_grad=True)
    return x, y, (x * y).exp() + x


def _dot_nodes_edges(src):
    nodes = dict(re.findall(r'^\s+(\w+) \[label="([^"]*)"', src, re.M))
    edges = re.findall(r"^\s+(\w+) -> (\w+)", src, re.M)
    return nodes, edges


def test_to_dot_names_ops_shapes_dtypes_and_parameters():
    model, loss, params = _mlp()
    src = viz.to_dot(loss, params)
    assert src.startswith("digraph tape {") and src.rstrip().endswith("}")
    nodes, edges = _dot_nodes_edges(src)
    labels = "\n".join(nodes.values())
    for name, p in params.items():  # every parameter is a named, grad-requiring leaf
        label = next(v for v in nodes.values() if v.startswith(name + "\\n"))
        assert f"{tuple(p.shape)} float32" in label and "requires_grad" in label
    # (2-D cross_entropy with class indices and linear with a bias are one fused op each,
    # ops/loss_ops.py and ops/linear_op.py)
    for op in ("LinearBackward", "TanhBackward", "CrossEntropyBackward"):
        assert op in labels
    assert "(5, 4) float32" in labels  # an intermediate's shape
    assert "output\\n() float32" in labels
    # well formed: every edge joins declared nodes, and every op has an input edge
    assert all(a in nodes and b in nodes for a, b in edges)
    assert {b for _, b in edges} >= {k for k, v in nodes.items() if "Backward" in v}
    assert sum(1 for v in nodes.values() if "requires_grad" in v) == 4


def test_to_dot_edges_follow_the_tape():
    x, y, out = _simple()
    nodes, edges = _dot_nodes_edges(viz.to_dot(out, {"x": x, "y": y}))
    name = {k: v.split("\\n")[0] for k, v in nodes.items()}
    named_edges = sorted((name[a], name[b]) for a, b in edges)
    assert named_edges == sorted([("x", "mul"), ("y", "mul"), ("mul", "exp"), ("exp", "add"),
                                  ("x", "add"), ("add", "output")])


def test_to_dot_multi_output_custom_function():
    class SplitTwice(tapegrad.autograd.Function):
        @staticmethod
        def forward(ctx, a):
            return a * 2, a * 3

        @staticmethod
        def backward(ctx, g1, g2):
            return g1 * 2 + g2 * 3

    a = tapegrad.randn(3, 4, requires_grad=True)
    p, q = SplitTwice.apply(a)
    out = (p.sin() + q).sum()
    src = viz.to_dot(out, {"a": a})
    nodes, edges = _dot_nodes_edges(src)
    labels = "\n".join(nodes.values())
    assert "SplitTwiceBackward" in labels
    assert "(3, 4) float32 | (3, 4) float32" in labels  # both outputs' shapes
    assert re.search(r'-> \w+ \[label="1"\]', src)  # the edge from output 1 is labelled
    assert viz.pp(out, {"a": a}) == "sum((sin(SplitTwice(a)) + SplitTwice(a)[1]))"


def test_to_dot_of_a_leaf_and_of_a_tensor_without_tape():
    w = tapegrad.ones(2, requires_grad=True)
    nodes, edges = _dot_nodes_edges(viz.to_dot(w, {"w": w}))
    assert len(nodes) == 2 and len(edges) == 1
    nodes, edges = _dot_nodes_edges(viz.to_dot(tapegrad.ones(2) * 3))
    assert list(nodes.values()) == ["output\\n(2,) float32\\nno grad"] and edges == []
    with pytest.raises(TypeError, match="viz"):
        viz.to_dot([1, 2])


def test_print_tape_lists_ops_in_execution_order(capsys):
    x, y, out = _simple()
    text = viz.print_tape(out, {"x": x, "y": y})
    assert capsys.readouterr().out == text
    lines = text.splitlines()
    assert [ln.split(" = ")[1].split("(")[0].split()[0] for ln in lines] == \
        ["x", "y", "mul", "exp", "add", "output"]
    assert lines[2].startswith("%2 = mul(%0, %1)") and "(3,) float32" in lines[2]
    assert "leaf, requires_grad" in lines[0]
    assert lines[4].startswith("%4 = add(%3, %0)")


def test_pp_theano_style():
    x, y, out = _simple()
    assert viz.pp(out, {"x": x, "y": y}) == "(exp((x * y)) + x)"
    a = tapegrad.ones(2, 3, requires_grad=True)
    b = tapegrad.ones(3, 2, requires_grad=True)
    assert viz.pp((a @ b).sin() * 2, {"a": a, "b": b}) == "(sin((a @ b)) * <const>)"


def _svg_ok(text):
    root = ET.fromstring(text)
    assert root.tag.endswith("svg")
    return root


def test_builtin_svg_layout_without_graphviz(monkeypatch, tmp_path):
    monkeypatch.setattr(viz, "_dot_program", lambda: None)
    model, loss, params = _mlp()
    g = viz.make_dot(loss, params)
    svg = g._repr_svg_()
    root = _svg_ok(svg)
    texts = [t.text for t in root.iter() if t.tag.endswith("text")]
    assert "0.weight" in texts and "TanhBackward" in texts and "output" in texts
    rects = [r for r in root.iter() if r.tag.endswith("rect")]
    assert len(rects) == len(g.vertices)
    # no two boxes overlap
    boxes = [(float(r.get("x")), float(r.get("y")), float(r.get("width")),
              float(r.get("height"))) for r in rects]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert (a[0] + a[2] <= b[0] or b[0] + b[2] <= a[0] or a[1] + a[3] <= b[1]
                    or b[1] + b[3] <= a[1]), (a, b)
    path = viz.render(loss, str(tmp_path / "tape.svg"), params)
    _svg_ok(open(path).read())
    with pytest.raises(RuntimeError, match="Graphviz.*dot"):
        viz.render(loss, str(tmp_path / "tape.png"), params)
    with pytest.raises(RuntimeError, match="Graphviz"):
        g.render(str(tmp_path / "g.png"))


def test_builtin_layout_keeps_edges_out_of_boxes():
    from tapegrad._svg_layout import layout

    x = tapegrad.randn(4, requires_grad=True)
    h = x
    for _ in range(5):
        h = h.sin()
    out = (h * x).sum()  # x's edge to mul spans five layers
    place, paths, w, hgt = layout(viz.build(out))
    for pts in paths:
        assert pts[0][1] < pts[-1][1]  # every edge runs downwards
        for (x0, y0), (x1, y1) in zip(pts[1:-1:2], pts[2:-1:2]):  # straight passes
            for vid, (cx, top, bw, bh) in place.items():
                if bw and top < (y0 + y1) / 2 < top + bh:
                    assert not (cx - bw / 2 < x0 < cx + bw / 2), f"edge crosses {vid}"


def test_render_formats(tmp_path):
    model, loss, params = _mlp()
    p = viz.render(loss, str(tmp_path / "t.dot"), params)
    assert open(p).read() == viz.to_dot(loss, params)
    with pytest.raises(ValueError, match="unsupported format"):
        viz.render(loss, str(tmp_path / "t.bmp"))
    if HAS_DOT:  # the Graphviz path proper
        png = viz.render(loss, str(tmp_path / "t.png"), params)
        assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
        svg = open(viz.render(loss, str(tmp_path / "t.svg"), params)).read()
        assert "0.weight" in svg and "<svg" in svg
        assert "0.weight" in viz.make_dot(loss, params)._repr_svg_()
    else:
        with pytest.raises(RuntimeError, match="Graphviz"):
            viz.render(loss, str(tmp_path / "t.png"), params)


def test_graph_object_does_not_keep_the_tape_alive():
    x = tapegrad.randn(3, requires_grad=True)
    out = (x.exp() * 2).sum()
    ref = weakref.ref(out.grad_fn)
    g = viz.make_dot(out)
    del out
    gc.collect()
    assert ref() is None
    assert "ops" in repr(g) and "SumBackward" in str(g)


def test_exported_as_tapegrad_viz():
    import subprocess
    import sys

    code = "import tapegrad; print(callable(tapegrad.viz.to_dot))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "True", out.stderr


def test_tensor_reprs_match_pytorch():
    torch = pytest.importorskip("torch")
    exprs = ["m.tensor([1.0, 2.5, 3.0])", "m.tensor([[1, 2], [3, 4]])",
             "m.tensor(3.5, requires_grad=True)", "m.tensor([1.0, 2.0], requires_grad=True) * 2",
             "m.tensor([1e-8, 1e8])", "m.tensor([True, False])",
             "m.zeros(2, 3, dtype=m.float64)", "m.arange(2000.)",
             "m.tensor([[0.1, -2.0], [3.25, 4.0]]).exp()"]
    for e in exprs:
        ours = repr(eval(e, {"m": tapegrad})).replace("tapegrad.", "torch.")
        theirs = re.sub(r"Backward\d+", "Backward", repr(eval(e, {"m": torch})))
        assert ours == theirs, e
