"""Preprocessing transforms (gaia.md §4), checked against hand-computed values."""

import json

import numpy as np
import pytest

from mirkit.errors import MirkitError
from mirkit.gaia.dataset import ENUM, REAL, STRING, Dataset
from mirkit.gaia.preprocess import (Chain, Enumerate, Gaussianize, Normalize, erfinv,
                                    transform_from_data)


def make(**cols):
    kinds, data = {}, {}
    n = None
    for name, values in cols.items():
        arr = np.array(values, dtype=object if isinstance(values[0][0], str) else np.float32)
        kinds[name] = STRING if arr.dtype == object else REAL
        data[name] = arr
        n = len(values)
    return Dataset([f"p{i}" for i in range(n)], kinds, data)


def test_enumerate_first_seen_order_and_unseen_codes():
    ds = make(**{"tonal.key": [["F"], ["C"], ["F"], ["A"]], "x": [[1], [2], [3], [4]]})
    t = Enumerate({"descriptorNames": ["tonal.key"]})
    out = t.fit_apply(ds)
    assert out.kinds["tonal.key"] == ENUM
    assert out.data["tonal.key"].ravel().tolist() == [0, 1, 0, 2]  # F, C, A by first sight
    new = make(**{"tonal.key": [["B"], ["C"]], "x": [[0], [0]]})
    assert t.apply(new).data["tonal.key"].ravel().tolist() == [3, 1]  # unseen -> next code
    with pytest.raises(MirkitError, match="didn't match"):
        Enumerate({"descriptorNames": ["x"]}).fit(ds)  # only String descriptors qualify


def test_normalize_vectorwise_and_independent():
    ds = make(v=[[0, 10], [2, 20], [4, 30]])
    # vector-wise (Gaia default): min over all dims 0, max 30 -> a = 1/30, b = 0
    out = Normalize({}).fit_apply(ds)
    expect = (np.array([[0, 10], [2, 20], [4, 30]], np.float32) * np.float32(1 / 30)).astype(np.float32)
    assert np.allclose(out.data["v"], expect, atol=1e-7)
    # independent: per dim min-max to [0, 1]
    out = Normalize({"independent": True}).fit_apply(ds)
    assert np.allclose(out.data["v"], [[0, 0], [0.5, 0.5], [1, 1]])
    with pytest.raises(MirkitError, match="Division by zero in .c"):
        Normalize({"independent": True}).fit(make(c=[[1, 5], [1, 6]]))


def test_erfinv_matches_scipy():
    special = pytest.importorskip("scipy.special")
    xs = np.linspace(-0.9999, 0.9999, 301)
    assert np.allclose([erfinv(x) for x in xs], special.erfinv(xs), rtol=1e-12, atol=1e-12)


def test_gaussianize_rank_rules():
    # reference distribution of 4 values: 1 2 3 4 (n = 4)
    ds = make(**{"lowlevel.f": [[3], [1], [4], [2]]})
    t = Gaussianize({"descriptorNames": "lowlevel.*"})
    t.fit(ds)
    probe = make(**{"lowlevel.f": [[0.5], [1], [2.5], [4], [9]]})
    got = t.apply(probe).data["lowlevel.f"].ravel()
    # ranks by gaia.md §4.5: below -> 0 -> 1; x=1 -> searchsorted right = 1; 2.5 -> 2;
    # x=4 -> 4 capped to n-1 = 3; above -> n -> n-1 = 3. y = erfinv(2*rank/4 - 1)
    ranks = [1, 1, 2, 3, 3]
    expect = [np.float32(erfinv(2 * r / 4 - 1)) for r in ranks]
    assert got.tolist() == expect


def test_state_is_plain_data_round_trip():
    ds = make(**{"lowlevel.f": [[3, 1], [1, 2], [4, 3]], "tonal.k": [["a"], ["b"], ["a"]]})
    chain = Chain.from_steps([
        {"transfo": "enumerate", "params": {"descriptorNames": ["tonal.k"]}},
        {"transfo": "normalize"},
        {"transfo": "gaussianize", "params": {"descriptorNames": "lowlevel.*"}},
        {"transfo": "fixlength"}])
    out = chain.fit_apply(ds)
    data = json.loads(json.dumps(chain.to_data()))  # JSON-able
    again = Chain.from_data(data).apply(ds)
    for name in out.names:
        assert np.array_equal(out.data[name], again.data[name])
    assert transform_from_data(data[0]).state == {"maps": {"tonal.k": ["a", "b"]}}
