"""A small layered graph layout that writes SVG, for pictures of the tape without Graphviz.

The method is the usual one for data-flow graphs (Sugiyama style, much simplified): put each
vertex on the layer one below its deepest input, order every layer by the mean position of
its inputs (a few sweeps down and up reduce edge crossings), then draw boxes and cubic edges.
Good enough for the graphs of one model step; Graphviz does better when it is installed.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

_FILL = {"op": "#e6e6e6", "leaf": "#bfe3f2", "output": "#caff70"}
_CHAR_W = 6.6      # average glyph width of 11px Helvetica
_LINE_H = 14
_PAD_X, _PAD_Y = 10, 6
_GAP_X, _GAP_Y = 24, 46
_DUMMY_W = 6.0   # the width an edge takes when it passes through a layer


def _size(v):
    w = max(len(s) for s in v.lines) * _CHAR_W + 2 * _PAD_X
    h = len(v.lines) * _LINE_H + 2 * _PAD_Y
    return max(w, 40.0), h


def layout(vertices):
    """Place the vertices; returns (place, paths, width, height).

    ``place``: id -> (x_center, y_top, width, height). ``paths``: one list of points per edge,
    from the bottom of the input's box to the top of the consumer's box. Layers: longest path
    from the sources, then every vertex moved down to just above its first consumer. An edge
    spanning several layers goes through thin dummy vertices, one per layer it crosses, which
    take part in the ordering like real ones, so it never runs through a box.
    """
    by_id = {v.id: v for v in vertices}
    edges = [(i[0], v.id) for v in vertices for i in v.inputs
             if i is not None and i[0] in by_id]
    ins = {v.id: [] for v in vertices}
    outs = {v.id: [] for v in vertices}
    for a, b in edges:
        ins[b].append(a)
        outs[a].append(b)
    layer = {}
    for v in vertices:  # vertices come in execution order: inputs first
        layer[v.id] = 1 + max((layer[i] for i in ins[v.id]), default=-1)
    for v in reversed(vertices):
        if outs[v.id]:
            layer[v.id] = min(layer[c] for c in outs[v.id]) - 1

    sizes = {v.id: _size(v) for v in vertices}
    up = {vid: [] for vid in layer}     # ordering graph, dummies included
    down = {vid: [] for vid in layer}
    chains = []
    for k, (a, b) in enumerate(edges):
        chain = [a]
        for lay in range(layer[a] + 1, layer[b]):
            d = f"_d{k}_{lay}"
            layer[d] = lay
            sizes[d] = (_DUMMY_W, 0.0)
            up[d], down[d] = [], []
            chain.append(d)
        chain.append(b)
        for x, y in zip(chain, chain[1:]):
            down[x].append(y)
            up[y].append(x)
        chains.append(chain)

    rows = [[] for _ in range(1 + max(layer.values(), default=0))]
    for vid in layer:
        rows[layer[vid]].append(vid)
    pos = {}

    def reindex():
        for r in rows:
            for k, vid in enumerate(r):
                pos[vid] = k

    reindex()
    for _ in range(6):  # barycenter sweeps: down by inputs, up by consumers
        for r in rows[1:]:
            r.sort(key=lambda vid: _mean([pos[i] for i in up[vid]], pos[vid]))
            reindex()
        for r in reversed(rows[:-1]):
            r.sort(key=lambda vid: _mean([pos[c] for c in down[vid]], pos[vid]))
            reindex()

    widths = [sum(sizes[vid][0] for vid in r) + _GAP_X * (len(r) - 1) for r in rows]
    canvas_w = max(widths, default=0) + 2 * _GAP_X
    place = {}
    y = _GAP_Y / 2
    for r, w in zip(rows, widths):
        x = (canvas_w - w) / 2
        row_h = max((sizes[vid][1] for vid in r), default=0)
        for vid in r:
            bw, bh = sizes[vid]
            if vid in by_id:
                place[vid] = (x + bw / 2, y + (row_h - bh) / 2, bw, bh)
            else:  # a dummy: the edge passes straight down through this row
                place[vid] = (x + bw / 2, y, 0.0, row_h)
            x += bw + _GAP_X
        y += row_h + _GAP_Y
    paths = []
    for chain in chains:
        pts = []
        for k, vid in enumerate(chain):
            cx, top, _, h = place[vid]
            if k > 0:
                pts.append((cx, top))
            if k < len(chain) - 1:
                pts.append((cx, top + h))
        paths.append(pts)
    return place, paths, canvas_w, y - _GAP_Y / 2


def _mean(xs, default):
    return sum(xs) / len(xs) if xs else default


def svg(vertices) -> str:
    """An SVG document drawing ``vertices`` (as built by :func:`tapegrad.viz.build`)."""
    place, paths, width, height = layout(vertices)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}pt" '
           f'height="{height:.0f}pt" viewBox="0 0 {width:.0f} {height:.0f}" '
           'font-family="Helvetica, Arial, sans-serif" font-size="11">',
           "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
           "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
           "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#444\"/></marker></defs>",
           '<g class="edges" fill="none" stroke="#444" stroke-width="1">']
    for pts in paths:
        d = f"M {pts[0][0]:.1f} {pts[0][1]:.1f}"
        for (x1, y1), (x2, y2) in zip(pts, pts[1:]):
            if x1 == x2:
                d += f" L {x2:.1f} {y2:.1f}"
            else:
                mid = (y1 + y2) / 2
                d += f" C {x1:.1f} {mid:.1f} {x2:.1f} {mid:.1f} {x2:.1f} {y2:.1f}"
        out.append(f'<path d="{d}" marker-end="url(#arrow)"/>')
    out.append("</g>")
    out.append('<g class="nodes">')
    for v in vertices:
        x, y, w, h = place[v.id]
        out.append(f'<g class="node {v.kind}" id="{escape(v.id)}"><title>{escape(v.title)}'
                   f"</title>")
        out.append(f'<rect x="{x - w / 2:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" '
                   f'rx="5" ry="5" fill="{_FILL[v.kind]}" stroke="#333"/>')
        for k, line in enumerate(v.lines):
            weight = ' font-weight="bold"' if k == 0 else ""
            ty = y + _PAD_Y + _LINE_H * (k + 0.75)
            out.append(f'<text x="{x:.1f}" y="{ty:.1f}" text-anchor="middle"{weight}>'
                       f"{escape(line)}</text>")
        out.append("</g>")
    out.append("</g></svg>")
    return "\n".join(out) + "\n"
