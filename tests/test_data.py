"""tapegrad.utils.data: datasets, samplers, DataLoader and collation."""

from collections import OrderedDict, namedtuple

import numpy as np
import pytest

import tapegrad
from tapegrad.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset,
                                 IterableDataset, RandomSampler, SequentialSampler, Subset,
                                 SubsetRandomSampler, TensorDataset, WeightedRandomSampler,
                                 default_collate, random_split)


def _xy(n=10):
    x = tapegrad.arange(n * 3, dtype=tapegrad.float64).reshape(n, 3)
    y = tapegrad.arange(n)
    return TensorDataset(x, y)


class Dicts(Dataset):
    def __len__(self):
        return 5

    def __getitem__(self, i):
        return {"x": tapegrad.full((2,), float(i)), "label": i, "name": f"s{i}",
                "pair": (i * 0.5, np.int32(i))}


def test_import_paths():
    import tapegrad.utils.data as tud

    assert tapegrad.utils.data is tud
    assert tud.DataLoader is DataLoader


def test_tensor_dataset_items_and_errors():
    ds = _xy(4)
    x, y = ds[2]
    assert x.tolist() == [6.0, 7.0, 8.0] and y.item() == 2
    assert len(ds) == 4
    with pytest.raises(AssertionError, match=r"Size mismatch.*\[4, 3\]"):
        TensorDataset(tapegrad.zeros(4, 2), tapegrad.zeros(3))


def test_sequential_batches_and_len():
    dl = DataLoader(_xy(10), batch_size=4)
    batches = list(dl)
    assert len(dl) == 3 and len(batches) == 3
    assert isinstance(batches[0], list)  # PyTorch collates a tuple sample into a list
    assert [b[0].shape for b in batches] == [(4, 3), (4, 3), (2, 3)]
    assert batches[0][1].dtype == tapegrad.int64
    assert tapegrad.cat([b[1] for b in batches]).tolist() == list(range(10))
    assert batches[2][0].tolist() == [[24.0, 25.0, 26.0], [27.0, 28.0, 29.0]]


def test_drop_last():
    dl = DataLoader(_xy(10), batch_size=4, drop_last=True)
    assert len(dl) == 2
    assert [b[0].shape[0] for b in dl] == [4, 4]


def test_shuffle_is_a_permutation_and_reproducible_with_manual_seed():
    ds = _xy(20)

    def order():
        return tapegrad.cat([y for _, y in DataLoader(ds, batch_size=6, shuffle=True)]).tolist()

    tapegrad.manual_seed(123)
    a1, a2 = order(), order()
    tapegrad.manual_seed(123)
    b1, b2 = order(), order()
    assert a1 == b1 and a2 == b2
    assert sorted(a1) == list(range(20)) and a1 != list(range(20))
    assert a1 != a2  # a new order every epoch


def test_shuffle_with_generator_ignores_global_seed():
    ds = _xy(20)
    runs = []
    for global_seed in (0, 1):
        tapegrad.manual_seed(global_seed)
        g = tapegrad.Generator().manual_seed(7)
        dl = DataLoader(ds, batch_size=5, shuffle=True, generator=g)
        runs.append([tapegrad.cat([y for _, y in dl]).tolist() for _ in range(2)])
    assert runs[0] == runs[1]
    assert runs[0][0] != runs[0][1]


def test_batches_match_rows_of_the_dataset():
    ds = _xy(9)
    tapegrad.manual_seed(3)
    for x, y in DataLoader(ds, batch_size=4, shuffle=True):
        for xi, yi in zip(x, y.tolist()):
            assert xi.tolist() == ds[yi][0].tolist()


def test_collate_dicts_nested_tuples_strings_numbers():
    batch = next(iter(DataLoader(Dicts(), batch_size=3)))
    assert set(batch) == {"x", "label", "name", "pair"}
    assert batch["x"].shape == (3, 2) and batch["x"][2].tolist() == [2.0, 2.0]
    assert batch["label"].dtype == tapegrad.int64 and batch["label"].tolist() == [0, 1, 2]
    assert batch["name"] == ["s0", "s1", "s2"]
    half, ints = batch["pair"]
    assert half.dtype == tapegrad.float64 and half.tolist() == [0.0, 0.5, 1.0]
    assert ints.dtype == tapegrad.int32


def test_default_collate_structures():
    Point = namedtuple("Point", "x y")
    p = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(p, Point) and p.x.tolist() == [1, 3] and p.y.dtype == tapegrad.float64
    od = default_collate([OrderedDict(b=1, a=2), OrderedDict(b=3, a=4)])
    assert isinstance(od, OrderedDict) and list(od) == ["b", "a"]
    arr = default_collate([np.ones((2, 2), np.float32), np.zeros((2, 2), np.float32)])
    assert arr.shape == (2, 2, 2) and arr.dtype == tapegrad.float32
    flags = default_collate([True, False])
    assert flags.dtype == tapegrad.bool
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate.*object"):
        default_collate([object(), object()])


def test_collate_keeps_graph():
    w = tapegrad.ones(3, requires_grad=True)
    out = default_collate([w * 2, w * 3])
    out.sum().backward()
    assert w.grad.tolist() == [5.0, 5.0, 5.0]


def test_custom_collate_fn_and_plain_sequences():
    dl = DataLoader(list(range(7)), batch_size=3, collate_fn=lambda b: sum(b))
    assert list(dl) == [3, 12, 6]
    dl = DataLoader([1.5, 2.5, 3.5], batch_size=2)
    assert [b.tolist() for b in dl] == [[1.5, 2.5], [3.5]]


def test_batch_size_none_and_samplers():
    dl = DataLoader(np.arange(6).reshape(3, 2), batch_size=None)
    items = list(dl)
    assert len(dl) == 3 and items[1].tolist() == [2, 3] and isinstance(items[1], tapegrad.Tensor)
    bs = BatchSampler(SequentialSampler(range(5)), batch_size=2, drop_last=False)
    assert list(bs) == [[0, 1], [2, 3], [4]] and len(bs) == 3
    dl = DataLoader(_xy(5), batch_sampler=[[4, 0], [2]])
    assert [y.tolist() for _, y in dl] == [[4, 0], [2]]
    dl = DataLoader(_xy(6), sampler=[5, 4, 3], batch_size=2)
    assert [y.tolist() for _, y in dl] == [[5, 4], [3]] and len(dl) == 2


def test_random_sampler_variants():
    g = tapegrad.Generator().manual_seed(0)
    assert sorted(RandomSampler(range(6), generator=g)) == list(range(6))
    draws = list(RandomSampler(range(3), replacement=True, num_samples=50, generator=g))
    assert len(draws) == 50 and set(draws) <= {0, 1, 2}
    more = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert sorted(more[:8]) == sorted(list(range(4)) * 2)
    assert sorted(SubsetRandomSampler([9, 3, 5], generator=g)) == [3, 5, 9]
    assert set(WeightedRandomSampler([0.0, 0.0, 1.0], 5, generator=g)) == {2}
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler([])


def test_option_conflicts_raise():
    ds = _xy(4)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), batch_size=0, drop_last=False)


def test_iterable_dataset():
    class Stream(IterableDataset):
        def __iter__(self):
            return iter(tapegrad.full((2,), float(i)) for i in range(5))

    batches = list(DataLoader(Stream(), batch_size=2))
    assert [b.shape[0] for b in batches] == [2, 2, 1]
    assert [b.shape[0] for b in DataLoader(Stream(), batch_size=2, drop_last=True)] == [2, 2]
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(), shuffle=True)
    with pytest.raises(TypeError):
        len(DataLoader(Stream(), batch_size=2))


def test_subset_and_concat():
    ds = _xy(6)
    sub = Subset(ds, [5, 1, 3])
    assert len(sub) == 3 and sub[0][1].item() == 5
    cat = ConcatDataset([sub, _xy(2)])
    assert len(cat) == 5 and cat[3][1].item() == 0 and cat[-1][1].item() == 1
    assert len(sub + ds) == 9
    with pytest.raises(IndexError):
        cat[5]
    batches = list(DataLoader(cat, batch_size=5))
    assert batches[0][1].tolist() == [5, 1, 3, 0, 1]


def test_random_split_sizes_disjoint_and_reproducible():
    ds = _xy(10)
    a, b, c = random_split(ds, [5, 3, 2], generator=tapegrad.Generator().manual_seed(1))
    assert (len(a), len(b), len(c)) == (5, 3, 2)
    idx = list(a.indices) + list(b.indices) + list(c.indices)
    assert sorted(idx) == list(range(10))
    a2, _, _ = random_split(ds, [5, 3, 2], generator=tapegrad.Generator().manual_seed(1))
    assert list(a2.indices) == list(a.indices)
    # DataLoader over a Subset returns the subset's rows in the subset's order
    ys = tapegrad.cat([y for _, y in DataLoader(a, batch_size=2)]).tolist()
    assert ys == list(a.indices)


def test_random_split_fractions_like_pytorch():
    parts = random_split(range(11), [0.5, 0.3, 0.2])
    # floor(5.5, 3.3, 2.2) = 5, 3, 2; the one left over goes to the first split
    assert [len(p) for p in parts] == [6, 3, 2]
    assert sorted(i for p in parts for i in p.indices) == list(range(11))
    with pytest.raises(ValueError, match="sum of input lengths"):
        random_split(range(10), [3, 3])
    with pytest.raises(ValueError, match="non-negative"):
        random_split(range(2), [3, -1])


def test_random_split_fraction_sizes_match_torch():
    torch = pytest.importorskip("torch")
    for n, fr in [(11, [0.5, 0.3, 0.2]), (7, [0.1, 0.9]), (100, [0.33, 0.33, 0.34])]:
        ours = [len(p) for p in random_split(range(n), fr)]
        theirs = [len(p) for p in torch.utils.data.random_split(range(n), fr)]
        assert ours == theirs


def test_loader_len_matches_torch():
    torch = pytest.importorskip("torch")
    for n, bs, drop in [(10, 3, False), (10, 3, True), (9, 3, True), (1, 4, False)]:
        ours = DataLoader(_xy(n), batch_size=bs, drop_last=drop)
        theirs = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(torch.zeros(n)), batch_size=bs, drop_last=drop)
        assert len(ours) == len(theirs) == len(list(ours))
