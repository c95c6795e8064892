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


def _size(v):
    w = max(len(s) for s in v.lines) * _CHAR_W + 2 * _PAD_X
    h = len(v.lines) * _LINE_H + 2 * _PAD_Y
    return max(w, 40.0), h


def layout(vertices):
    """Positions: id -> (x_center, y_top, width, height); plus the canvas size."""
    by_id = {v.id: v for v in vertices}
    inputs = {v.id: [i[0] for i in v.inputs if i is not None and i[0] in by_id]
              for v in vertices}
    layer = {}
    for v in vertices:  # vertices come in execution order: inputs first
        layer[v.id] = 1 + max((layer[i] for i in inputs[v.id]), default=-1)
    n_layers = 1 + max(layer.values(), default=0)
    rows = [[] for _ in range(n_layers)]
    for v in vertices:
        rows[layer[v.id]].append(v.id)
    consumers = {v.id: [] for v in vertices}
    for v in vertices:
        for i in inputs[v.id]:
            consumers[i].append(v.id)

    pos = {}

    def reindex():
        for r in rows:
            for k, vid in enumerate(r):
                pos[vid] = k

    reindex()
    for _ in range(4):  # barycenter sweeps: down by inputs, up by consumers
        for r in rows[1:]:
            r.sort(key=lambda vid: _mean([pos[i] for i in inputs[vid]], pos[vid]))
            reindex()
        for r in reversed(rows[:-1]):
            r.sort(key=lambda vid: _mean([pos[c] for c in consumers[vid]], pos[vid]))
            reindex()

    sizes = {v.id: _size(v) for v in vertices}
    widths = [sum(sizes[vid][0] for vid in r) + _GAP_X * (len(r) - 1) for r in rows]
    canvas_w = max(widths, default=0) + 2 * _GAP_X
    place = {}
    y = _GAP_Y / 2
    for r, w in zip(rows, widths):
        x = (canvas_w - w) / 2
        row_h = max((sizes[vid][1] for vid in r), default=0)
        for vid in r:
            bw, bh = sizes[vid]
            place[vid] = (x + bw / 2, y + (row_h - bh) / 2, bw, bh)
            x += bw + _GAP_X
        y += row_h + _GAP_Y
    return place, canvas_w, y - _GAP_Y / 2


def _mean(xs, default):
    return sum(xs) / len(xs) if xs else default


def svg(vertices) -> str:
    """An SVG document drawing ``vertices`` (as built by :func:`tapegrad.viz.build`)."""
    place, width, height = layout(vertices)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}pt" '
           f'height="{height:.0f}pt" viewBox="0 0 {width:.0f} {height:.0f}" '
           'font-family="Helvetica, Arial, sans-serif" font-size="11">',
           "<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" "
           "markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
           "<path d=\"M 0 0 L 10 5 L 0 10 z\" fill=\"#444\"/></marker></defs>",
           '<g class="edges" fill="none" stroke="#444" stroke-width="1">']
    for v in vertices:
        for inp in v.inputs:
            if inp is None or inp[0] not in place:
                continue
            x1, y1, _, h1 = place[inp[0]]
            x2, y2, _, _ = place[v.id]
            y1 += h1
            mid = (y1 + y2) / 2
            out.append(f'<path d="M {x1:.1f} {y1:.1f} C {x1:.1f} {mid:.1f} {x2:.1f} {mid:.1f} '
                       f'{x2:.1f} {y2:.1f}" marker-end="url(#arrow)"/>')
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
