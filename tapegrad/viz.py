"""Pictures and listings of the tape that produced a tensor.

* :func:`to_dot` returns Graphviz DOT text (no Graphviz needed to make it);
* :func:`render` writes SVG or PNG through the ``graphviz`` package and the ``dot`` program,
  and writes SVG with a built-in layout when those are missing;
* :func:`print_tape` prints a listing in execution order, and :func:`pp` an expression in
  the style of Theano's ``theano.printing.pp``;
* :func:`make_dot` returns a :class:`Graph`, which Jupyter shows as SVG (``_repr_svg_``),
  through ``dot`` when present and the built-in layout otherwise, so a notebook always shows
  a picture.

>>> import tapegrad as torch
>>> w = torch.randn(3, 2, requires_grad=True)
>>> loss = (torch.ones(4, 3) @ w).tanh().sum()
>>> torch.viz.print_tape(loss, params={"w": w})
%0 = w                        (3, 2) float32  leaf, requires_grad
%1 = mm(<const>, %0)          (4, 2) float32
...

Data flows downwards in the pictures: leaves at the top, the output at the bottom. Shapes
and dtypes come from what the tape holds (the output, the leaves, saved tensors and the
shapes ops keep for their backward); an intermediate that nothing kept is drawn without one,
so recording stays free of bookkeeping that only pictures would need.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np

__all__ = ["to_dot", "render", "print_tape", "pp", "make_dot", "Graph"]


# ---- the tape as a small graph -------------------------------------------------------------------
@dataclass
class Vertex:
    id: str
    kind: str                # "op", "leaf", "output"
    title: str               # op name / leaf name / "output"
    detail: str = ""         # "(3, 4) float32"
    note: str = ""           # "requires_grad", "MulBackward", ...
    inputs: list = field(default_factory=list)   # vertex ids feeding this one, in order

    @property
    def lines(self) -> list[str]:
        return [x for x in (self.title, self.detail, self.note) if x]


def _fmt(shape, dtype) -> str:
    parts = []
    if shape is not None:
        parts.append(str(tuple(shape)))
    if dtype is not None:
        parts.append(str(dtype).replace("tapegrad.", ""))
    return " ".join(parts)


def _dtype_of_array(a):
    from tapegrad import _dtype as D

    return D._FROM_NP.get(a.dtype)


def _known_shapes(nodes, roots):
    """(node, output index) -> [shape, dtype] from what the tape keeps (see module doc)."""
    from tapegrad.autograd.node import SavedOutput
    from tapegrad.tensor import Tensor

    known = {}

    def put(key, shape, dtype):
        cur = known.setdefault(key, [None, None])
        if cur[0] is None and shape is not None:
            cur[0] = tuple(shape)
        if cur[1] is None and dtype is not None:
            cur[1] = dtype

    for t in roots:
        if t.grad_fn is not None:
            put((t.grad_fn, t._out_nr), t.shape, t.dtype)
    for n in nodes:
        for s in getattr(n, "_saved", ()) or ():
            if type(s) is SavedOutput:
                put((n, s.nr), s.data.shape, _dtype_of_array(s.data))
            elif isinstance(s, Tensor) and s.grad_fn is not None:
                put((s.grad_fn, s._out_nr), s.shape, s.dtype)
        meta = n.__dict__.get("_out_meta") if hasattr(n, "__dict__") else None
        for k, m in enumerate(meta or ()):
            if m is not None:
                put((n, k), m[0], m[1])
        d = n.__dict__ if hasattr(n, "__dict__") else {}
        shapes = d.get("shapes")
        if isinstance(shapes, tuple) and all(isinstance(s, tuple) for s in shapes):
            for e, s in zip(getattr(n, "next", ()), shapes):
                if e is not None:
                    put(e, s, None)
            try:  # broadcasting ops keep their input shapes; the output is their broadcast
                put((n, 0), np.broadcast_shapes(*shapes), None)
            except ValueError:
                pass
        if isinstance(d.get("in_shape"), tuple) and n.next and n.next[0] is not None:
            put(n.next[0], d["in_shape"], None)
    # Elementwise unary ops keep shape and dtype: carry what is known across them.
    from tapegrad.ops.unary import Neg, _Unary

    for _ in range(len(nodes)):
        changed = False
        for n in nodes:
            if not isinstance(n, (_Unary, Neg)) or not n.next or n.next[0] is None:
                continue
            a, b = known.get(n.next[0], [None, None]), known.get((n, 0), [None, None])
            for src, dst in ((a, (n, 0)), (b, n.next[0])):
                before = list(known.get(dst, [None, None]))
                put(dst, src[0], src[1])
                changed |= known[dst] != before
        if not changed:
            break
    return known


def _walk(roots):
    """Every node reachable from the roots, in a deterministic depth-first order."""
    order, seen = [], set()
    stack = [t.grad_fn for t in reversed(roots) if t.grad_fn is not None]
    stack += [_leaf_node(t) for t in reversed(roots) if t.grad_fn is None and t.requires_grad]
    while stack:
        n = stack.pop()
        if n is None or n in seen:
            continue
        seen.add(n)
        order.append(n)
        for e in reversed(getattr(n, "next", ()) or ()):
            if e is not None and e[0] not in seen:
                stack.append(e[0])
    return order


def _leaf_node(t):
    from tapegrad.autograd.node import AccumulateGrad

    return AccumulateGrad.of(t)


def _as_roots(tensor):
    from tapegrad.tensor import Tensor

    roots = list(tensor) if isinstance(tensor, (list, tuple)) else [tensor]
    for t in roots:
        if not isinstance(t, Tensor):
            raise TypeError(f"viz: expected a Tensor (or a list of them), got "
                            f"{type(t).__name__}")
    return roots


def build(tensor, params: dict | None = None) -> list[Vertex]:
    """The tape behind ``tensor`` as vertices in execution order (leaves first, output last)."""
    from tapegrad.autograd.node import AccumulateGrad

    roots = _as_roots(tensor)
    names = {id(v): k for k, v in (params or {}).items()}
    nodes = _walk(roots)
    known = _known_shapes(nodes, roots)
    vid = {}
    verts = {}
    # Execution order = reverse of a topological order from the roots.
    for n in _topo(nodes):
        v_id = f"n{len(vid)}"
        vid[n] = v_id
        if type(n) is AccumulateGrad:
            t = n.variable
            name = names.get(id(t)) or getattr(t, "_name", None) or "leaf"
            note = "requires_grad" + (", has .grad" if t.grad is not None else "")
            verts[n] = Vertex(v_id, "leaf", name, _fmt(t.shape, t.dtype), note)
        else:
            nout = getattr(n, "_nout", 1) or 1
            outs = [known.get((n, k), [None, None]) for k in range(nout)]
            detail = " | ".join(_fmt(*o) for o in outs if o[0] is not None or o[1] is not None)
            verts[n] = Vertex(v_id, "op", n.name, detail, n.name_backward())
    for n in vid:
        v = verts[n]
        for e in getattr(n, "next", ()) or ():
            v.inputs.append(None if e is None else (vid[e[0]], e[1]))
    out = [verts[n] for n in vid]
    for k, t in enumerate(roots):
        src = vid[t.grad_fn] if t.grad_fn is not None else vid.get(_leaf_node(t)) \
            if t.requires_grad else None
        title = "output" if len(roots) == 1 else f"output {k}"
        ov = Vertex(f"out{k}", "output", title, _fmt(t.shape, t.dtype),
                    "" if t.requires_grad else "no grad")
        if src is not None:
            ov.inputs.append((src, t._out_nr))
        out.append(ov)
    return out


def _topo(nodes):
    """Producers before consumers, close to the order the forward pass ran: a depth-first
    post-order from the roots that visits each node's inputs first to last."""
    members = set(nodes)
    has_consumer = {e[0] for n in nodes for e in (getattr(n, "next", ()) or ()) if e}
    roots = [n for n in nodes if n not in has_consumer]
    order, done = [], set()
    for r in roots:
        stack = [(r, False)]
        while stack:
            n, expanded = stack.pop()
            if n in done:
                continue
            if expanded:
                done.add(n)
                order.append(n)
                continue
            stack.append((n, True))
            for e in reversed(getattr(n, "next", ()) or ()):
                if e is not None and e[0] in members and e[0] not in done:
                    stack.append((e[0], False))
    return order


# ---- DOT text ------------------------------------------------------------------------------------
_COLORS = {"op": "lightgrey", "leaf": "lightblue", "output": "darkolivegreen1"}


def _dot_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(tensor, params: dict | None = None) -> str:
    """Graphviz DOT text of the tape that produced ``tensor`` (or a list of tensors).

    ``params`` maps names to tensors (e.g. ``dict(model.named_parameters())``) so leaves are
    labelled by name.

    >>> print(tapegrad.viz.to_dot(loss, dict(model.named_parameters())))
    digraph tape { ... }
    """
    verts = build(tensor, params)
    lines = ["digraph tape {",
             '  graph [rankdir=TB, fontname="Helvetica"];',
             '  node [shape=box, style="rounded,filled", fillcolor=lightgrey, '
             'fontname="Helvetica", fontsize=10];',
             '  edge [arrowsize=0.7];']
    for v in verts:
        label = "\\n".join(_dot_escape(x) for x in v.lines)
        color = _COLORS[v.kind]
        lines.append(f'  {v.id} [label="{label}", fillcolor={color}];')
    for v in verts:
        multi = {}
        for inp in v.inputs:
            if inp is not None:
                multi.setdefault(inp[0], set()).add(inp[1])
        for inp in v.inputs:
            if inp is None:
                continue
            src, nr = inp
            attrs = f' [label="{nr}"]' if nr or len(multi.get(src, ())) > 1 else ""
            lines.append(f"  {src} -> {v.id}{attrs};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---- listings ------------------------------------------------------------------------------------
def print_tape(tensor, params: dict | None = None, file=None) -> str:
    """Print the tape as one line per operation, in execution order; returns the text.

    >>> tapegrad.viz.print_tape((x * y).exp())
    %0 = x      (3,) float32  leaf, requires_grad
    ...
    """
    verts = build(tensor, params)
    num = {v.id: k for k, v in enumerate(verts)}
    rows = []
    for v in verts:
        if v.kind == "leaf":
            lhs, rhs = f"%{num[v.id]} = {v.title}", f"{v.detail}  leaf, {v.note}"
        else:
            args = ", ".join("<const>" if i is None else f"%{num[i[0]]}" +
                             (f"[{i[1]}]" if i[1] else "") for i in v.inputs)
            lhs = f"%{num[v.id]} = {v.title}({args})"
            rhs = v.detail or "(shape not kept)"
            if v.note and v.kind == "output":
                rhs += f"  {v.note}"
        rows.append((lhs, rhs))
    width = max(len(a) for a, _ in rows) + 2
    text = "\n".join(f"{a:<{width}}{b}".rstrip() for a, b in rows) + "\n"
    print(text, end="", file=file if file is not None else sys.stdout)
    return text


_INFIX = {"add": "+", "sub": "-", "mul": "*", "div": "/", "matmul": "@", "mm": "@",
          "pow": "**"}


def pp(tensor, params: dict | None = None) -> str:
    """The expression that computed ``tensor``, Theano ``pp`` style.

    >>> tapegrad.viz.pp((x * y).exp() + x, {"x": x, "y": y})
    '(exp((x * y)) + x)'
    """
    verts = build(tensor, params)
    text = {}
    for v in verts:  # execution order: inputs are done before their consumers
        args = ["<const>" if i is None else text[i[0]] + (f"[{i[1]}]" if i[1] else "")
                for i in v.inputs]
        if v.kind == "leaf":
            text[v.id] = v.title
        elif v.kind == "output":
            text[v.id] = args[0] if args else "<no tape>"
        elif v.title in _INFIX and len(args) == 2:
            text[v.id] = f"({args[0]} {_INFIX[v.title]} {args[1]})"
        else:
            text[v.id] = f"{v.title}({', '.join(args)})"
    outs = [text[v.id] for v in verts if v.kind == "output"]
    return outs[0] if len(outs) == 1 else "(" + ", ".join(outs) + ")"


# ---- rendering -----------------------------------------------------------------------------------
def _dot_program() -> str | None:
    return shutil.which("dot")


def _run_dot(source: str, fmt: str) -> bytes:
    """Lay out with Graphviz: the ``graphviz`` package when installed, else ``dot`` itself."""
    try:
        import graphviz
    except ImportError:
        graphviz = None
    if graphviz is not None:
        return graphviz.Source(source).pipe(format=fmt)
    proc = subprocess.run([_dot_program(), f"-T{fmt}"], input=source.encode(),
                          capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"render: dot failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout


def render(tensor, path: str, params: dict | None = None, format: str | None = None) -> str:
    """Write a picture of the tape to ``path`` (``.svg`` or ``.png``); returns the path.

    With Graphviz's ``dot`` installed (and the ``graphviz`` package, when present) it lays out
    the graph; without it, SVG is drawn by tapegrad's built-in layout and PNG raises a
    ``RuntimeError`` that says what to install.

    >>> tapegrad.viz.render(loss, "tape.svg", dict(model.named_parameters()))
    'tape.svg'
    """
    fmt = (format or os.path.splitext(path)[1].lstrip(".") or "svg").lower()
    if fmt not in ("svg", "png", "pdf", "dot", "gv"):
        raise ValueError(f"render: unsupported format {fmt!r}; use svg, png, pdf or dot")
    if fmt in ("dot", "gv"):
        data = to_dot(tensor, params).encode()
    elif _dot_program() is not None:
        data = _run_dot(to_dot(tensor, params), fmt)
    elif fmt == "svg":
        from tapegrad._svg_layout import svg

        data = svg(build(tensor, params)).encode()
    else:
        raise RuntimeError(f"render: writing {fmt.upper()} needs Graphviz's `dot` program, "
                           "which was not found on PATH. Install Graphviz (e.g. apt-get install "
                           "graphviz, or conda install graphviz) and optionally the Python "
                           "package (pip install graphviz), or write .svg, which tapegrad can "
                           "draw by itself.")
    with open(path, "wb") as f:
        f.write(data)
    return path


class Graph:
    """A picture of a tape for notebooks: ``Graph(loss)`` shows itself as SVG in Jupyter.

    >>> g = tapegrad.viz.make_dot(loss, dict(model.named_parameters()))
    >>> g            # in Jupyter: the picture
    >>> g.source     # DOT text
    >>> g.render("tape.png")
    """

    def __init__(self, tensor, params: dict | None = None) -> None:
        # Keep the vertices, not the tensors: a picture must not keep a tape alive.
        self.vertices = build(tensor, params)
        self.source = to_dot(tensor, params)

    def _repr_svg_(self) -> str:
        if _dot_program() is not None:
            try:
                return _run_dot(self.source, "svg").decode()
            except Exception:  # a broken Graphviz install still gets a picture
                pass
        from tapegrad._svg_layout import svg

        return svg(self.vertices)

    def render(self, path: str, format: str | None = None) -> str:
        fmt = (format or os.path.splitext(path)[1].lstrip(".") or "svg").lower()
        if fmt in ("dot", "gv"):
            data = self.source.encode()
        elif _dot_program() is not None:
            data = _run_dot(self.source, fmt)
        elif fmt == "svg":
            data = self._repr_svg_().encode()
        else:
            raise RuntimeError(f"render: writing {fmt.upper()} needs Graphviz's `dot` program, "
                               "which was not found on PATH (install Graphviz, or write .svg)")
        with open(path, "wb") as f:
            f.write(data)
        return path

    def __str__(self) -> str:
        buf = io.StringIO()
        for v in self.vertices:
            buf.write(f"{v.id}: {' / '.join(v.lines)}\n")
        return buf.getvalue()

    def __repr__(self) -> str:
        ops = sum(v.kind == "op" for v in self.vertices)
        leaves = sum(v.kind == "leaf" for v in self.vertices)
        return f"<tapegrad.viz.Graph: {ops} ops, {leaves} leaves>"


def make_dot(tensor, params: dict | None = None) -> Graph:
    """A :class:`Graph` of the tape behind ``tensor`` (named after torchviz's ``make_dot``)."""
    return Graph(tensor, params)
