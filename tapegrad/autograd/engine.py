"""The tape walk: reverse-mode differentiation over recorded nodes.

``backward`` and ``grad`` both reduce to :func:`run`. A plain ``backward()`` runs the nodes
reachable from the roots by falling recording number (a consumer is always numbered above
its inputs, so every node has all its gradient when its turn comes), calling each vjp once
with the summed incoming gradients; a checking pre-pass first makes sure that no node to run
was freed or had a saved tensor changed in place, and is skipped when the graph was recorded
after the last such event (``_fresh``). ``grad`` and ``backward(inputs=...)`` count
dependencies over the graph pruned to the paths that reach the inputs. Both walks are
iterative (a million-node chain needs no recursion) and free each node's saved tensors right
after its vjp unless ``retain_graph`` is set.
"""

from __future__ import annotations

from heapq import heapify, heappop, heappush

from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd.grad_mode import STATE as _GRAD
from tapegrad.autograd import node as _node
from tapegrad.autograd.accumulate import accumulate as _accumulate
from tapegrad.autograd.accumulate import sum_in_place as _sum_in_place
from tapegrad.autograd.node import AccumulateGrad, SavedOutput

__all__ = ["backward", "grad", "run"]

_release = _node.Node.release


def _as_tuple(x):
    if x is None:
        return ()
    if isinstance(x, (tuple, list)):
        return tuple(x)
    return (x,)


def _root_edge(t, i, op):
    from tapegrad.tensor import Tensor

    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: expected a Tensor as output {i}, got {type(t).__name__}")
    if not t.requires_grad:
        raise RuntimeError(f"{op}: element {i} of tensors does not require grad and does not "
                           "have a grad_fn")
    if t.grad_fn is not None:
        return (t.grad_fn, t._out_nr)
    return (AccumulateGrad.of(t), 0)


def _root_grads(outputs, grads, op, create_graph):
    from tapegrad.creation import ones_like
    from tapegrad.tensor import Tensor

    grads = _as_tuple(grads)
    if grads and len(grads) != len(outputs):
        raise RuntimeError(f"{op}: got {len(grads)} gradients for {len(outputs)} outputs")
    res = []
    for i, t in enumerate(outputs):
        g = grads[i] if grads else None
        if g is None:
            if t._data.size != 1:
                raise RuntimeError(f"{op}: grad can be implicitly created only for scalar "
                                   f"outputs, but output {i} has shape {tuple(t.shape)}; pass "
                                   "`gradient=` with that shape")
            g = ones_like(t)
        else:
            if not isinstance(g, Tensor):
                from tapegrad.creation import tensor

                g = tensor(g, dtype=t.dtype, device=t.device)
            if tuple(g.shape) != tuple(t.shape):
                raise RuntimeError(f"{op}: Mismatch in shape: grad_output[{i}] has a shape of "
                                   f"{tuple(g.shape)} and output[{i}] has a shape of "
                                   f"{tuple(t.shape)}")
            if not create_graph:
                g = g.detach()
        res.append(g)
    return res


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False,
             inputs=None) -> None:
    """Accumulate gradients of ``tensors`` into the ``.grad`` of the leaves (or ``inputs``)."""
    outputs = _as_tuple(tensors)
    if retain_graph is None:
        retain_graph = create_graph
    edges = [_root_edge(t, i, "backward") for i, t in enumerate(outputs)]
    grads = _root_grads(outputs, grad_tensors, "backward", create_graph)
    inputs = _as_tuple(inputs)
    if inputs:
        targets = [_input_edge(t, i, "backward") for i, t in enumerate(inputs)]
        captured = run(edges, grads, retain_graph, create_graph, targets=targets,
                       accumulate=True)
        # Leaves got theirs through AccumulateGrad; a non-leaf input keeps its .grad too.
        for t, g in zip(inputs, captured):
            if t.grad_fn is not None and g is not None:
                _accumulate(t, g, create_graph)
    else:
        run(edges, grads, retain_graph, create_graph)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """The gradients of ``outputs`` with respect to ``inputs``, without touching ``.grad``.

    >>> x = tapegrad.tensor(3.0, requires_grad=True)
    >>> tapegrad.autograd.grad(x ** 2, x)
    (tensor(6.),)
    """
    outputs = _as_tuple(outputs)
    inputs_t = _as_tuple(inputs)
    if allow_unused is None:
        allow_unused = materialize_grads
    if retain_graph is None:
        retain_graph = create_graph
    edges = [_root_edge(t, i, "grad") for i, t in enumerate(outputs)]
    grads = _root_grads(outputs, grad_outputs, "grad", create_graph)
    targets = [_input_edge(t, i, "grad") for i, t in enumerate(inputs_t)]
    captured = run(edges, grads, retain_graph, create_graph, targets=targets, accumulate=False)
    res = []
    for i, (t, g) in enumerate(zip(inputs_t, captured)):
        if g is None:
            if materialize_grads:
                from tapegrad.creation import zeros_like

                g = zeros_like(t)
            elif not allow_unused:
                raise RuntimeError(f"grad: one of the differentiated Tensors (input {i}, shape "
                                   f"{tuple(t.shape)}) appears to not have been used in the "
                                   "graph. Set allow_unused=True if this is the desired "
                                   "behavior.")
        elif not create_graph:
            fw = g._fw
            g = g.detach()
            if fw:  # forward AD: a gradient keeps its tangents, as in PyTorch (H v for hvp)
                from tapegrad.autograd.forward_ad import copy_tangents

                copy_tangents(fw, g)
        res.append(g)
    return tuple(res)


def _input_edge(t, i, op):
    from tapegrad.tensor import Tensor

    if not isinstance(t, Tensor):
        raise TypeError(f"{op}: input {i} is a {type(t).__name__}, not a Tensor")
    if not t.requires_grad:
        raise RuntimeError(f"{op}: One of the differentiated Tensors (input {i}, shape "
                           f"{tuple(t.shape)}) does not require grad")
    if t.grad_fn is not None:
        return (t.grad_fn, t._out_nr)
    return (AccumulateGrad.of(t), 0)


def _reachable(root_nodes, check=False):
    """Dependency counts (consumers per node) over everything reachable from the roots, in
    discovery order; with ``check``, each node's saved tensors are checked as it is found."""
    deps = {}
    roots = dict.fromkeys(root_nodes)
    if check:
        _check_saved(roots, None)
    stack = list(roots)
    pop = stack.pop
    push = stack.append
    get = deps.get
    Tensor = _node.Tensor
    last = _node.LAST_INPLACE[0]  # a node numbered above it saved after the last change
    # Runs once per recorded node before the walk: _check_node is inlined for the usual
    # saved entries (a tensor, an output), and anything unusual goes to it.
    while stack:
        n = pop()
        for e in n.next:
            if e is None:
                continue
            c = e[0]
            d = get(c)
            if d is None:
                deps[c] = 1
                if c not in roots:
                    if check:
                        if c._freed:
                            _check_node(c)
                        elif c._saved and c._seq <= last:
                            for s, v in zip(c._saved, c._versions):
                                k = s.__class__
                                if k is SavedOutput:
                                    if s.vc[0] != v:
                                        _check_node(c)
                                elif k is Tensor or isinstance(s, Tensor):
                                    if s._vc[0] != v:
                                        _check_node(c)
                    push(c)
            else:
                deps[c] = d + 1
    return deps


def _prune(root_nodes, deps, target_nodes):
    """Keep only nodes that lie on a path from a root to a target; recount dependencies."""
    # Kahn's order from the roots, then walk it backwards to mark nodes that reach a target.
    left = dict(deps)
    order = []
    ready = [n for n in set(root_nodes) if left.get(n, 0) == 0]
    while ready:
        n = ready.pop()
        order.append(n)
        for e in n.next:
            if e is None:
                continue
            c = e[0]
            left[c] -= 1
            if left[c] == 0:
                ready.append(c)
    reach = set()
    execute = set()
    for n in reversed(order):
        if any(e is not None and e[0] in reach for e in n.next):
            execute.add(n)
            reach.add(n)
        if n in target_nodes:
            reach.add(n)
    new_deps = {}
    for n in execute:
        for e in n.next:
            if e is not None and e[0] in reach:
                new_deps[e[0]] = new_deps.get(e[0], 0) + 1
    return new_deps, reach, execute


def run(root_edges, root_grads, retain_graph, create_graph, targets=None, accumulate=True):
    """Walk the tape from ``root_edges``; returns the gradients reaching ``targets``."""
    from tapegrad.ops.elementwise import add as _add

    root_nodes = [e[0] for e in root_edges]
    execute = None
    if targets is not None:
        deps = _reachable(root_nodes)
        target_nodes = {e[0] for e in targets}
        deps, reach, execute = _prune(root_nodes, deps, target_nodes)
        capture = {}
        for k, (n, nr) in enumerate(targets):
            capture.setdefault(n, []).append((nr, k))
        captured = [None] * len(targets)
        # Roots, then the rest in discovery order (deps is a dict): the node nearest the
        # output is reported first, as the walk itself would.
        _check_saved(dict.fromkeys(root_nodes), execute)
        _check_saved(deps, execute)
    else:
        capture = None
        # A graph recorded after the last in-place change and the last backward that freed
        # nodes can hold neither a changed saved tensor nor a freed node: no checking pre-pass
        # (node.WATERMARK), and the walk goes by recording order, with no dependency counts.
        deps = None
        if not (accumulate and _fresh(root_nodes)):
            deps = _reachable(root_nodes, check=True)
    if not retain_graph:
        # This pass frees nodes: from now on, no graph recorded so far counts as fresh (moved
        # before the walk, so that a backward starting in another thread meanwhile checks).
        _node.WATERMARK[0] = _node.take_number()

    buffers = {}
    for (n, nr), g in zip(root_edges, root_grads):
        buf = buffers.get(n)
        if buf is None:
            buf = buffers[n] = [None] * n._nout
        buf[nr] = g if buf[nr] is None else _add(buf[nr], g)

    # The loop below runs once per recorded op: it is written for speed (no generator
    # expressions, one dict lookup per edge, the common single-output case first).
    anomaly = _hs.ANOMALY
    prev_mode = _GRAD.grad_enabled
    prev_transposes = _GRAD.transposes
    _GRAD.grad_enabled = create_graph
    _GRAD.transposes = {}  # this pass's reused transposed weights (matmul_t.reused_nt)
    try:
        if capture is None and execute is None and accumulate:
            for n, buf in buffers.items():
                if n._nout == 1:
                    buffers[n] = buf[0]  # _walk keeps a single output's gradient bare
            _walk(list(dict.fromkeys(root_nodes)), buffers, retain_graph, create_graph,
                      anomaly, _add)
            ready = ()
        else:
            ready = [n for n in dict.fromkeys(root_nodes) if deps.get(n, 0) == 0]
        while ready:
            n = ready.pop()
            grads = buffers.pop(n, None)
            if grads is None:
                grads = [None] * n._nout
            if n._pre_hooks:
                grads = _run_pre_hooks(n, grads)
            if capture is not None and n in capture:
                for nr, k in capture[n]:
                    captured[k] = grads[nr]
            if type(n) is AccumulateGrad:
                if accumulate and (capture is None or n in capture):
                    _accumulate(n.variable, grads[0], create_graph)
                continue
            if execute is not None and n not in execute:
                continue
            if grads[0] is not None or (len(grads) > 1 and any(g is not None for g in grads)):
                if anomaly:
                    outs = _hs.anomaly_vjp(n, grads)  # vjp + check, blaming node n
                else:
                    outs = n.vjp(*grads)
                if n._post_hooks:
                    for hook in tuple(n._post_hooks.values()):
                        hook(outs, grads)
            else:
                outs = (None,) * len(n.next)
            if not retain_graph:
                n.release()
            for e, g in zip(n.next, outs):
                if e is None:
                    continue
                c = e[0]
                if execute is not None and c not in reach:
                    continue
                if g is not None:
                    buf = buffers.get(c)
                    if buf is None:
                        if c._nout == 1:
                            buffers[c] = [g]
                        else:
                            buf = buffers[c] = [None] * c._nout
                            buf[e[1]] = g
                    else:
                        old = buf[e[1]]
                        buf[e[1]] = g if old is None else _add(old, g)
                d = deps[c] - 1
                deps[c] = d
                if d == 0:
                    ready.append(c)
    finally:
        _GRAD.grad_enabled = prev_mode
        _GRAD.transposes = prev_transposes
    return captured if capture is not None else None


def _fresh(root_nodes) -> bool:
    """Whether every node reachable from the roots was recorded after the last in-place change
    and the last backward that freed nodes (``_min`` is the oldest number of a history)."""
    w = _node.WATERMARK[0]
    for n in root_nodes:
        if n._min <= w:
            return False
    return True


def _walk(roots, buffers, retain_graph, create_graph, anomaly, add) -> None:
    """The loop of ``run`` for a plain ``backward()``: every reachable node runs and every
    leaf accumulates. It runs once per recorded op, so it has no target or capture tests,
    and a single-output node (nearly all of them) gets its gradient as a bare tensor: no list
    per node, no star-call of the vjp.

    Nodes run by falling recording number (``_seq``), from a heap of the nodes that have been
    reached: a node's consumers all have higher numbers, and every consumer reachable from
    the roots is reached (and runs) before the node's turn comes, so the node has all its
    gradient by then. A node reached for the first time whose number is above everything on
    the heap runs next without going through the heap or ``buffers`` (every node, on a chain
    of ops). No dependency counts: with the pre-pass that counted them skipped on a fresh
    graph (``_fresh``), this saves about 0.6 us per node.
    """
    heap = [(-n._seq, n) for n in roots]
    heapify(heap)
    take = buffers.pop
    get = buffers.get
    while heap:
        n = heappop(heap)[1]
        g = take(n, None)
        while True:
            if n._nout == 1:
                if n._pre_hooks:
                    g = _run_pre_hooks(n, [g])[0]
                if n.__class__ is AccumulateGrad:
                    _accumulate(n.variable, g, create_graph)
                    break
                if g is not None:
                    outs = _hs.anomaly_vjp(n, [g]) if anomaly else n.vjp(g)
                    if n._post_hooks:
                        for hook in tuple(n._post_hooks.values()):
                            hook(outs, [g])
                else:
                    outs = (None,) * len(n.next)
            else:
                grads = g if g is not None else [None] * n._nout
                if n._pre_hooks:
                    grads = _run_pre_hooks(n, grads)
                if any(x is not None for x in grads):
                    outs = _hs.anomaly_vjp(n, grads) if anomaly else n.vjp(*grads)
                    if n._post_hooks:
                        for hook in tuple(n._post_hooks.values()):
                            hook(outs, grads)
                else:
                    outs = (None,) * len(n.next)
                grads = None
            g = None
            if not retain_graph:
                if n.__class__.release is _release:  # Node.release inlined: a call per node
                    if n._saved:
                        n._saved = ()
                        n._freed = True
                else:
                    n.release()
            nxt = None
            spilled = False  # the held node's gradient moved from ``g`` into ``buffers``
            for i, e in enumerate(n.next):
                if e is None:
                    continue
                c = e[0]
                gi = outs[i]
                if c is nxt and not spilled:
                    # A second edge to the held node (x * x, say): its gradient goes to the
                    # buffer, where the sum below finds it (and counts the buffer's reference).
                    buffers[c] = g
                    g = None
                    spilled = True
                old = get(c, _NEW)
                if old is _NEW:
                    # Reached for the first time: held to run next, unless a node held
                    # before it has a higher number (the lower one goes on the heap).
                    if nxt is not None:
                        if nxt._seq > c._seq:
                            buffers[c] = gi if c._nout == 1 else _list_with(c, e[1], gi)
                            heappush(heap, (-c._seq, c))
                            continue
                        if not spilled:
                            buffers[nxt] = g
                        g = None
                        heappush(heap, (-nxt._seq, nxt))
                    nxt = c
                    spilled = False
                    g = gi if c._nout == 1 else _list_with(c, e[1], gi)
                    continue
                if gi is None:
                    continue
                if c._nout == 1:
                    if old is None:
                        buffers[c] = gi
                    elif create_graph:
                        buffers[c] = add(old, gi)
                    elif not _sum_in_place(old, gi):
                        buffers[c] = gi if _sum_in_place(gi, old) else add(old, gi)
                else:
                    _add_to_list(buffers, c, e[1], gi, create_graph, add)
            outs = gi = old = None
            if nxt is None:
                break
            if heap and -heap[0][0] > nxt._seq:
                # Not the highest number reached: its turn comes from the heap.
                if not spilled:
                    buffers[nxt] = g
                g = None
                heappush(heap, (-nxt._seq, nxt))
                break
            if spilled:
                g = take(nxt)
            n = nxt


_NEW = object()  # buffers.get's default: a node not reached yet


def _list_with(c, nr, g) -> list:
    buf = [None] * c._nout
    buf[nr] = g
    return buf


def _add_to_list(buffers, c, nr, g, create_graph, add) -> None:
    """Put ``g`` into output ``nr``'s slot of multi-output node ``c``'s gradient list."""
    buf = buffers.get(c)
    if buf is None:
        buf = buffers[c] = [None] * c._nout
    old = buf[nr]
    if old is None:
        buf[nr] = g
    elif create_graph or not _sum_in_place(old, g):
        buf[nr] = add(old, g)


def _check_saved(nodes, execute) -> None:
    """Raise before any gradient is written if a node to run was freed by an earlier backward
    or had a saved tensor changed in place, so that a failing backward leaves every ``.grad``
    as it was (checked again, with the same errors, when each node unpacks its tensors)."""
    for n in nodes:
        if execute is not None and n not in execute:
            continue
        if n._freed or (n._saved and n._seq <= _node.LAST_INPLACE[0]):
            _check_node(n)


def _check_node(n) -> None:
    if n._freed:
        _ = n.saved  # raises the "backward through the graph a second time" error
    for s, v in zip(n._saved, n._versions):
        if type(s) is SavedOutput:
            vc = s.vc
        elif isinstance(s, _node.Tensor):
            vc = s._vc
        else:
            continue  # a constant
        if vc[0] != v:
            _ = n.saved  # raises the error naming the op, versions and lines


def _run_pre_hooks(n, grads):
    import weakref

    grads = list(grads)
    for key, table in list(n._pre_hooks.items()):
        if type(key) is int and key >= 0 and grads[key] is not None:
            for hook in tuple(table.values()):
                r = hook(grads[key])
                if r is not None:
                    grads[key] = r
    for key, ref in list(n._pre_hooks.items()):
        if type(key) is tuple and key[0] == "retain":
            t = ref() if isinstance(ref, weakref.ref) else None
            g = grads[key[1]]
            if t is not None and g is not None:
                t.grad = g.detach() if t.grad is None else (t.grad + g).detach()
    if -1 in n._pre_hooks:
        for hook in tuple(n._pre_hooks[-1].values()):
            r = hook(tuple(grads))
            if r is not None:
                grads = list(r)
    return grads
