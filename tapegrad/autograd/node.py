"""The tape entry: one recorded operation.

Every primitive op is a subclass of :class:`Node` that keeps its three rules side by side:

* ``forward(ctx, be, *arrays, **attrs)`` computes raw backend arrays (``be`` is the backend);
* ``vjp(ctx, *grads)`` returns one gradient per input, written with tapegrad's own
  differentiable operations, so ``create_graph=True`` gives higher derivatives for free;
* ``jvp(ctx, inputs, out, *tangents)`` pushes tangents forward for forward-mode AD.

Calling ``Op.apply(*inputs)`` runs forward and, when grad mode is on and an input requires
grad, records the node: the instance *is* the tape entry (PyTorch does the same with ctx).
What backward needs is declared, not saved by hand: ``save = (0, "out")`` keeps input 0 and the
output. Inputs are held as tensors; the output is held as its array plus version counter and
rebuilt on unpack, so a node never references its own output (no reference cycle).
"""

from __future__ import annotations

import weakref

import numpy as np

from tapegrad import _device
from tapegrad import _dtype as _dtype_mod
from tapegrad import backends as _backends
from tapegrad.autograd import hooks_state as _hs
from tapegrad.autograd.grad_mode import STATE as _GRAD
# Recording order and in-place changes, re-exported for the modules that record nodes or
# change tensors in place.
from tapegrad.autograd.order import (_COUNT, LAST_INPLACE, NEVER, WATERMARK, bump_inplace,
                                     number, take_number)
# A view shares its base's version counter (in-place changes show through) and remembers how
# to rebuild itself from the base (in-place ops on it rewrite the base's history).
from tapegrad.autograd.view_meta import record_view as _share_version

CPU = _device.CPU

__all__ = ["Node", "AccumulateGrad", "SavedOutput", "bump_inplace", "set_saved_version",
           "plain_tensor", "number", "take_number", "LAST_INPLACE", "WATERMARK"]


class SavedOutput:
    """How a node keeps its own output without referencing the output tensor."""

    __slots__ = ("data", "vc", "nr", "dev", "fw")

    def __init__(self, data, vc, nr, dev=None, fw=None):
        self.data = data
        self.vc = vc
        self.nr = nr
        self.dev = dev
        self.fw = fw  # the output's tangents (forward AD), shared with the output tensor


class Node:
    """Base class of every recorded operation (see the module docstring)."""

    __slots__ = ("next", "_saved", "_versions", "_freed", "_pre_hooks", "_post_hooks",
                 "_nout", "_trace", "_seq", "_min", "__dict__", "__weakref__")

    name = "op"          # shown in reprs, errors and graph pictures
    # What vjp reads (``self.saved``, in this order): an input index, ``(k, j)`` for input k
    # only when input j needs a gradient (None in its place otherwise), "out" / ("out", k).
    save = ()
    is_view = False      # output shares memory (and version counter) with input 0
    differentiable = True
    multi_output = False  # forward returns a tuple of arrays
    random = False       # forward draws from the global generator (kept and checked by a
    #                      compile trace: compiler/trace.py)

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        # The two commonest specs become shared objects that ``_save`` knows by identity
        # and saves without its general loop (~0.5 us per op on small arrays).
        if "save" in cls.__dict__:
            if cls.save == _OUT_SPEC:
                cls.save = _OUT_SPEC
            elif cls.save == _PRODUCT_SPEC:
                cls.save = _PRODUCT_SPEC

    # ---- rules every op supplies -------------------------------------------------------
    @staticmethod
    def forward(ctx, be, *arrays, **attrs):  # pragma: no cover - abstract
        raise NotImplementedError

    def vjp(self, *grads):  # pragma: no cover - abstract
        raise NotImplementedError(f"{self.name}: no vjp rule")

    def jvp(self, inputs, out, *tangents):
        raise NotImplementedError(f"{self.name}: this operation has no forward-mode (jvp) rule")

    # ---- bookkeeping -------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<{self.name_backward()} object at {hex(id(self))}>"

    def name_backward(self) -> str:
        return _camel(self.name) + "Backward"

    @property
    def next_functions(self):
        return tuple(e if e is not None else (None, 0) for e in self.next)

    @property
    def needs_input_grad(self):
        return tuple(e is not None for e in self.next)

    @property
    def saved(self):
        """The declared saved tensors, checked against in-place changes since saving."""
        return _unpack(self, False)

    @property
    def saved_raw(self):
        """``saved``, but in a plain backward (grad mode off, no anomaly mode or forward AD)
        each saved output comes as its bare array: for a vjp that hands it straight to a
        kernel through ``apply2``, which takes arrays, rebuilding a tensor around it would
        be wasted (~0.6 us per op on small arrays). With a graph being built (higher-order
        derivatives) it is a tensor, as in ``saved``."""
        return _unpack(self, not (_GRAD.grad_enabled or _hs.ANOMALY or _hs.FORWARD_AD))

    def release(self) -> None:
        """Free the saved tensors once backward has used them."""
        if self._saved:
            self._saved = ()
            self._freed = True

    def register_hook(self, fn):
        """Hook ``fn(grad_inputs, grad_outputs)`` run after this node's vjp."""
        from tapegrad.autograd.hooks_state import RemovableHandle

        if self._post_hooks is None:
            self._post_hooks = {}
        return RemovableHandle(self._post_hooks, fn)

    def register_prehook(self, fn):
        """Hook ``fn(grad_outputs)`` run before this node's vjp; may return new grads."""
        from tapegrad.autograd.hooks_state import RemovableHandle

        if self._pre_hooks is None:
            self._pre_hooks = {}
        return RemovableHandle(self._pre_hooks.setdefault(-1, {}), fn)

    @classmethod
    def apply2(cls, a, b):
        """``apply(a, b)`` for a two-input op without attributes, views or multiple outputs,
        on CPU tensors or Python numbers.

        The hottest calls of all take this path (the arithmetic operators, and every op
        run by the vjps of a plain backward): it does what ``apply`` does for two inputs,
        without the loops, lists and branches of the general case (about a third of an
        op's cost on small arrays). With grad mode off nothing is recorded; anything
        unusual (anomaly mode, forward AD, another device, a view) goes to ``apply``.
        """
        if _hs.ANOMALY or _hs.FORWARD_AD or cls.multi_output or cls.is_view:
            return cls.apply(a, b)
        grad = _GRAD.grad_enabled
        ea = eb = None
        if isinstance(a, Tensor):
            if a._device is not CPU:
                return cls.apply(a, b)
            xa = a._data
            if grad and a._requires_grad:
                fn = a.grad_fn
                ea = (fn, a._out_nr) if fn is not None else _leaf_edge(a)
        else:
            xa = a
        if isinstance(b, Tensor):
            if b._device is not CPU:
                return cls.apply(a, b)
            xb = b._data
            if grad and b._requires_grad:
                fn = b.grad_fn
                eb = (fn, b._out_nr) if fn is not None else _leaf_edge(b)
        else:
            xb = b
        ctx = _new(cls)
        out = cls.forward(ctx, _backends.CPU_BACKEND, xa, xb)
        if type(out) is not _ndarray:
            out = _asarray(out)  # NumPy hands back scalars, not 0-d arrays (see Tensor._make)
        if (ea is None and eb is None) or not cls.differentiable:
            return plain_tensor(out)
        return _recorded(ctx, cls, out, (ea, eb), (a, b))

    @classmethod
    def apply1(cls, a):
        """``apply(a)`` for a one-input op without attributes, views or multiple outputs
        (see ``apply2``)."""
        if _hs.ANOMALY or _hs.FORWARD_AD or cls.multi_output or cls.is_view or \
                not isinstance(a, Tensor) or a._device is not CPU:
            return cls.apply(a)
        ctx = _new(cls)
        out = cls.forward(ctx, _backends.CPU_BACKEND, a._data)
        if type(out) is not _ndarray:
            out = _asarray(out)  # NumPy hands back scalars, not 0-d arrays (see Tensor._make)
        if not (_GRAD.grad_enabled and a._requires_grad and cls.differentiable):
            return plain_tensor(out)
        fn = a.grad_fn
        return _recorded(ctx, cls, out, ((fn, a._out_nr) if fn is not None else
                                         _leaf_edge(a),), (a,))

    @classmethod
    def apply_view(cls, x, attrs: dict):
        """``apply(x, **attrs)`` for a view op when nothing is to be recorded: ``x`` a CPU
        tensor not requiring grad (``xs[t]`` of a batch, say) or grad mode off. The result
        shares memory and version counter with ``x`` as ``apply`` would make it, without
        the node and the general loops (about half the cost)."""
        if (x._requires_grad and _GRAD.grad_enabled) or _hs.ANOMALY or _hs.FORWARD_AD or \
                x._device is not CPU:
            return cls.apply(x, **attrs)
        out = plain_tensor(cls.forward(_new(cls), _backends.CPU_BACKEND, x._data, **attrs))
        _share_version(out, x, cls, attrs)
        return out

    # ---- the recording entry point -----------------------------------------------------
    @classmethod
    def apply(cls, *inputs, **attrs):
        """Run the op on ``inputs`` (tensors or constants) and record it when needed."""
        # The hottest function of the package (benchmarks/wl_per_op.py). Every Python call
        # costs about as much as twenty lines here, so the edges are gathered in the same
        # pass over the inputs, the output tensor is built inline, and there are no
        # comprehensions (they would turn the locals into cells).
        dev = None
        needs = False
        arrays = []
        if _GRAD.grad_enabled:
            leaf = False
            edges = []
            for x in inputs:
                if isinstance(x, Tensor):
                    d = x._device
                    if d is not dev:
                        if dev is None:
                            dev = d
                        elif d != dev:
                            _device_error(cls, inputs)
                    arrays.append(x._data)
                    if x._requires_grad:
                        needs = True
                        fn = x.grad_fn
                        if fn is not None:
                            edges.append((fn, x._out_nr))
                        else:
                            edges.append(x)  # a leaf: its sink is looked up only if recorded
                            leaf = True
                    else:
                        edges.append(None)
                else:
                    arrays.append(x)
                    edges.append(None)
            if needs:
                needs = cls.differentiable
        else:
            # Nothing is recorded (no_grad, and every op run inside a plain backward): only
            # the arrays and the device check.
            for x in inputs:
                if isinstance(x, Tensor):
                    if x._device is not dev and dev is not None and x._device != dev:
                        _device_error(cls, inputs)
                    dev = x._device
                    arrays.append(x._data)
                else:
                    arrays.append(x)
        if dev is CPU or dev is None:
            be = _backends.CPU_BACKEND
            dev = CPU
        else:
            be = _backends.backend_for_device(dev)
        ctx = _new(cls)
        if _hs.ANOMALY:
            _hs.anomaly_before(ctx, inputs)
        # Positional calls by arity: a star-call costs as much as the rest of this block.
        if attrs:
            out = cls.forward(ctx, be, *arrays, **attrs)
        elif len(arrays) == 2:
            out = cls.forward(ctx, be, arrays[0], arrays[1])
        elif len(arrays) == 1:
            out = cls.forward(ctx, be, arrays[0])
        else:
            out = cls.forward(ctx, be, *arrays)
        if cls.multi_output:
            outs = _make_outputs(out, needs, ctx, dev)
            ctx._nout = len(outs)
        else:
            # Tensor._make, inlined.
            if type(out) is not _ndarray and (dev is CPU or isinstance(out, _generic)):
                out = _asarray(out)  # NumPy hands back scalars, not 0-d arrays (see _make)
            outs = _new(Tensor)
            outs._data = out
            outs._dtype = _FROM_NP[out.dtype]
            outs._device = dev
            outs._requires_grad = needs
            outs.grad = None
            outs.grad_fn = ctx if needs else None
            outs._out_nr = 0
            outs._vc = [0, None]
            outs._base = None
            ctx._nout = 1
            if cls.is_view:
                _share_version(outs, inputs[0], cls, attrs)
        if needs:
            ctx._pre_hooks = ctx._post_hooks = None
            ctx._freed = False
            if leaf:
                _leaf_edges(edges)
            ctx.next = edges = tuple(edges)
            number(ctx, edges)
            if cls.save:
                _save(ctx, cls.save, inputs, outs)
            else:
                ctx._saved = ()
        if _hs.FORWARD_AD:
            _hs.forward_ad_hook(ctx, inputs, outs, attrs)
        if _hs.ANOMALY:
            _hs.anomaly_after(ctx, inputs, outs)
        return outs


_new = object.__new__
_ndarray = np.ndarray
_asarray = np.asarray
_generic = np.generic
_FROM_NP = _dtype_mod._FROM_NP
_T = [None]  # tapegrad.tensor fills in Tensor (kept for code that reads the cell)
Tensor = None  # tapegrad.tensor sets this module global to its Tensor class on import


def _unpack(node, raw: bool) -> list:
    """``node.saved`` (``node.saved_raw`` with ``raw``): the saved entries, versions checked."""
    if node._freed:
        raise RuntimeError(
            f"{node.name}: trying to backward through the graph a second time (or to "
            "access saved tensors after they have already been freed). Saved intermediate "
            "values of the graph are freed when you call .backward() or autograd.grad(). "
            "Specify retain_graph=True if you need to backward through the graph a second "
            "time or if you need to access saved tensors after calling backward.")
    out = []
    for s, v in zip(node._saved, node._versions):
        k = s.__class__  # (identity tests first: this runs in every vjp)
        # (None, an input no rule reads, and Python numbers skip the isinstance call.)
        if k is Tensor or (k is not SavedOutput and s is not None and k is not float and
                           k is not int and isinstance(s, Tensor)):
            vc = s._vc
            if vc[0] != v:
                _version_error(node, s.shape, vc, v, "input")
            out.append(s)
        elif k is SavedOutput:
            vc = s.vc
            if vc[0] != v:
                _version_error(node, s.data.shape, vc, v, "output")
            if raw:
                out.append(s.data)
                continue
            # The output rebuilt around its array (Tensor._make, inlined).
            t = _new(Tensor)
            t._data = a = s.data
            t._dtype = _FROM_NP[a.dtype]
            t._device = s.dev if s.dev is not None else CPU
            t._requires_grad = True
            t.grad = None
            t.grad_fn = node
            t._out_nr = s.nr
            t._vc = vc
            t._base = None
            if s.fw is not None:
                t._fw = s.fw
            out.append(t)
        else:
            out.append(s)  # a constant (a Python number, say): nothing to check
    return out


def _recorded(ctx, cls, out, edges: tuple, inputs: tuple):
    """The output tensor of ``ctx``, recorded with ``edges`` (``apply``'s last steps, for
    ``apply1`` / ``apply2``)."""
    t = plain_tensor(out)
    t._requires_grad = True
    t.grad_fn = ctx
    ctx._nout = 1
    ctx._pre_hooks = ctx._post_hooks = None
    ctx._freed = False
    ctx.next = edges
    # number(ctx, edges), inlined (one or two edges)
    lo = ctx._seq = next(_COUNT)
    for e in edges:
        if e is not None and e[0]._min < lo:
            lo = e[0]._min
    ctx._min = lo
    if cls.save:
        _save(ctx, cls.save, inputs, t)
    else:
        ctx._saved = ()
    return t


def plain_tensor(out):
    """A CPU tensor around a fresh array ``out``, not requiring grad (what ``apply2`` builds,
    for callers that computed ``out`` themselves)."""
    t = _new(Tensor)
    t._data = out
    t._dtype = _FROM_NP[out.dtype]
    t._device = CPU
    t._requires_grad = False
    t.grad = None
    t.grad_fn = None
    t._out_nr = 0
    t._vc = [0, None]
    t._base = None
    return t


def _make_outputs(arrays, needs, ctx, dev) -> tuple:
    make = Tensor._make
    return tuple([make(o, needs, ctx if needs else None, i, dev) for i, o in enumerate(arrays)])


def _leaf_edges(edges: list) -> None:
    """Replace the leaf tensors that ``apply`` put in ``edges`` by edges to their sinks."""
    for i, e in enumerate(edges):
        if e is not None and e.__class__ is not tuple:
            edges[i] = _leaf_edge(e)


_OUT_SPEC = ("out",)               # the output (tanh, sigmoid, relu, exp, ...)
_PRODUCT_SPEC = ((0, 1), (1, 0))  # each factor for the other's gradient (mul, matmul)


def _save(ctx, spec, inputs, outs):
    """Keep what ``spec`` names: inputs as themselves, outputs as :class:`SavedOutput`."""
    if spec is _OUT_SPEC and outs.__class__ is Tensor:
        # A fresh output: its version is 0.
        so = _new(SavedOutput)
        so.data = outs._data
        so.vc = outs._vc
        so.nr = outs._out_nr
        so.dev = outs._device
        so.fw = None
        ctx._saved = [so]
        ctx._versions = _ZEROS[1] if not outs._vc[0] else (outs._vc[0],)
        return
    if spec is _PRODUCT_SPEC:
        nx = ctx.next
        a = inputs[0] if nx[1] is not None else None
        b = inputs[1] if nx[0] is not None else None
        va = a._vc[0] if a is not None and isinstance(a, Tensor) else 0
        vb = b._vc[0] if b is not None and isinstance(b, Tensor) else 0
        ctx._saved = [a, b]
        ctx._versions = (va, vb) if va or vb else _ZEROS[2]
        return
    saved = []
    versions = []
    moved = 0  # any saved version above 0 (versions never go below)
    n = len(inputs)
    for s in spec:
        if s.__class__ is int or s[0].__class__ is int:
            if s.__class__ is not int:
                # (k, j): input k, kept only when input j needs a gradient (for a product,
                # the other factor). Like PyTorch, an input that no rule will read is not
                # kept, so changing it in place afterwards is no error.
                s, j = s
                if ctx.next[j] is None:
                    saved.append(None)
                    versions.append(0)
                    continue
            if s >= n:
                break
            x = inputs[s]
            saved.append(x)
            if isinstance(x, Tensor):
                v = x._vc[0]
                moved |= v
                versions.append(v)
            else:
                versions.append(0)
        else:
            o = outs if s == "out" else outs[s[1]]
            so = _new(SavedOutput)  # SavedOutput(o._data, o._vc, o._out_nr, o._device), inlined
            so.data = o._data
            so.vc = vc = o._vc
            so.nr = o._out_nr
            so.dev = o._device
            so.fw = None
            saved.append(so)
            v = vc[0]
            moved |= v
            versions.append(v)
    ctx._saved = saved
    # Nearly always every version is 0: a shared tuple of zeros then, not one more object
    # per node for the garbage collector to track (its young-generation passes cost ~0.5 us
    # per op on a chain of tiny ops). Writers replace ``_versions`` whole (set_saved_version).
    ctx._versions = tuple(versions) if moved or len(versions) > 16 else _ZEROS[len(versions)]


_ZEROS = tuple((0,) * k for k in range(17))  # (), (0,), (0, 0), ...; a node saves few


def set_saved_version(node, i: int, v: int) -> None:
    """Set the version that ``node`` expects of its saved entry ``i`` (``_versions`` may be a
    shared tuple: it is replaced, never written into)."""
    vs = list(node._versions)
    vs[i] = v
    node._versions = tuple(vs)


def _leaf_edge(x):
    ref = x._accum
    acc = ref() if ref is not None else None
    return (acc if acc is not None else AccumulateGrad.of(x), 0)


def _edge(x):
    """The edge from a consumer to the producer of tensor ``x`` (None: no gradient)."""
    if not x._requires_grad:
        return None
    fn = x.grad_fn
    if fn is not None:
        return (fn, x._out_nr)
    return _leaf_edge(x)


class AccumulateGrad(Node):
    """The sink for a leaf tensor: adds the incoming gradient into ``leaf.grad``."""

    name = "accumulate_grad"

    def name_backward(self) -> str:
        return "AccumulateGrad"

    @staticmethod
    def of(t) -> AccumulateGrad:
        # One sink per leaf, cached through a weak reference so that the leaf never keeps
        # its own sink alive (the sink references the leaf).
        ref = t._accum
        acc = ref() if ref is not None else None
        if acc is None:
            acc = AccumulateGrad.__new__(AccumulateGrad)
            acc.variable = t
            acc.next = ()
            acc._saved = ()
            acc._freed = False
            acc._pre_hooks = acc._post_hooks = None
            acc._seq = next(_COUNT)
            acc._min = NEVER
            acc._nout = 1
            t._accum = weakref.ref(acc)
        return acc


def _camel(name: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in name.split("_"))


def _version_error(node, shape, vc, saved_version, kind):
    # The saving line is known only in anomaly mode: finding the user's frame on every op
    # measured +4.4 us per op (18.1 -> 22.6 us forward+backward on a 2,000-op chain of
    # `x = x * c`, +25%; benchmarks/anomaly_overhead.py), a price for an error that one
    # re-run in anomaly mode explains.
    # The in-place line is always known (vc[1]): in-place ops are rare enough to pay for it.
    where = getattr(node, "_trace", None)
    msg = (f"one of the variables needed for gradient computation has been modified by an "
           f"inplace operation: the {kind} of {node.name} ({node.name_backward()}, shape "
           f"{tuple(shape)}) was saved at version {saved_version} and is now at version "
           f"{vc[0]}")
    if len(vc) > 1 and vc[1]:
        msg += f"; it was last modified in place by {vc[1]}"
    if where is not None:
        msg += f"; it was saved by {node.name} at {getattr(where, 'location', where)}"
    else:
        msg += ("; to see the line where it was saved, run the forward pass under "
                "tapegrad.autograd.set_detect_anomaly(True)")
    msg += ". Hint: use an out-of-place operation (e.g. x = x + y instead of x += y)."
    raise RuntimeError(msg)


def _device_error(cls, inputs):
    from tapegrad.tensor import Tensor

    devs = ", ".join(f"{tuple(x.shape)} on {x.device}" for x in inputs if isinstance(x, Tensor))
    raise RuntimeError(f"{cls.name}: expected all tensors to be on the same device, but found "
                       f"at least two devices: {devs}")


def is_array(x) -> bool:
    return isinstance(x, np.ndarray)
