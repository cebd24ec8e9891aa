"""The per-signature fast path of HistoryModel._extract gives the rows of the full check,
and every problem still reaches the full check (which names it)."""

import json

import numpy as np
import pytest

from mirkit.errors import MirkitError, MissingDescriptorsError
from mirkit.gaia.history import load_model


@pytest.fixture
def pools(gaia_fixtures):
    ref_dir = gaia_fixtures / "history-reference" / "mood_happy"
    return [json.loads(p.read_text()) for p in sorted(ref_dir.glob("pool_*.json"))]


@pytest.fixture
def model(gaia_fixtures):
    return load_model(str(gaia_fixtures / "history" / "mood_happy.history"))


def _copy(rec):
    return json.loads(json.dumps(rec))


def test_fast_rows_equal_checked_rows(model, pools, gaia_fixtures):
    other = load_model(str(gaia_fixtures / "history" / "mood_happy.history"))
    for rec in pools * 2:
        (a, sa), (b, sb) = model._extract(rec), other._extract_checked(rec)
        assert np.array_equal(a, b, equal_nan=True) and sa == sb
    assert model._plans     # the second pass went through cached plans
    # batches through the fast path predict as one record at a time through the full check
    assert model.predict_many(pools) == [other.predict(p) for p in pools]


def test_problems_after_a_plan_still_reported(model, pools):
    model.predict_many(pools)          # plans cached for these layouts
    key = "lowlevel.mfcc.mean"
    bad = _copy(pools[0])
    del bad["lowlevel"]["mfcc"]["mean"]
    with pytest.raises(MissingDescriptorsError, match=key):
        model.predict(bad)
    bad = _copy(pools[0])
    bad["lowlevel"]["mfcc"]["mean"][3] = "x"
    with pytest.raises(MirkitError, match="non-numeric"):
        model.predict(bad)
    bad = _copy(pools[0])
    cov = bad["lowlevel"]["mfcc"]["cov"]
    cov[1] = cov[1][:-1]               # a ragged matrix
    with pytest.raises(MirkitError, match="ragged"):
        model.predict(bad)
    bad = _copy(pools[0])
    bad["tonal"]["key_key"] = ["A", 3]
    with pytest.raises(MirkitError, match="wrong type"):
        model.predict(bad)
    bad = _copy(pools[0])
    bad["lowlevel"]["mfcc"]["mean"] = bad["lowlevel"]["mfcc"]["mean"][:-1]
    with pytest.raises(MirkitError, match="values"):
        model.predict(bad)
    assert model.predict(pools[0])["value"]    # sizes were fixed by the first good batch
    # a new instance fixed on a first record of other sizes refuses the good ones too (as one
    # GaiaTransform does), even though their layout has a cached plan
    model.reset()
    with pytest.raises(MirkitError, match="values"):
        model.predict(bad)
    with pytest.raises(MirkitError, match="first record"):
        model.predict(pools[0])
    model.reset()
    assert model.predict(pools[0])["value"]


def test_batch_votes_equal_single_votes():
    """Vectorised one-vs-one voting gives libsvm's winner, ties to the lowest index; e.g.
    k=3, decisions (0, 1) = +, (0, 2) = -, (1, 2) = + -> votes 1, 1, 1 -> class 0."""
    from mirkit.gaia.history import _votes
    from mirkit.gaia.history_svm import vote
    assert _votes([[1.0, -1.0, 1.0]], 3) == [0] == [vote([1.0, -1.0, 1.0], 3)]
    rng = np.random.default_rng(0)
    for k in (2, 3, 5):
        decs = rng.choice([-1.0, 0.0, 0.5, -0.25], size=(200, k * (k - 1) // 2)).tolist()
        assert _votes(decs, k) == [vote(d, k) for d in decs]
