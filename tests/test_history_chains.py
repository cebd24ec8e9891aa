"""Hand-built tiny .history chains (written with history_writer), the LIBSVM 2.89 probability
step, and the writer's fidelity on the real files."""

import json
import math

import numpy as np
import pytest

from mirkit.errors import MirkitError
from mirkit.gaia.history import load_model, gaussianize_table
from mirkit.gaia.history_format import read_history, parse_history
from mirkit.gaia.history_svm import probabilities_289, validate_model_text
from mirkit.gaia.history_writer import (chain_description, history_bytes, serialize_history,
                                        write_history)

f32 = np.float32

# A linear 2-class model over 4 features [a, k, v0, v1]; libsvm label order (1, 0), i.e.
# "yes" first. Two support vectors; dec = 0.5*<x,sv1> - 0.25*<x,sv2> - rho.
MODEL_TEXT = """svm_type c_svc
kernel_type linear
nr_class 2
total_sv 2
rho 0.125
label 1 0
probA -2.5
probB 0.1
nr_sv 1 1
SV
0.5 1:1 2:0.5 3:1 4:-1 
-0.25 1:-1 2:2 3:0.5 4:2 
"""
SV1 = [1, 0.5, 1, -1]
SV2 = [-1, 2, 0.5, 2]

DIST_V0 = [0.0, 0.25, 0.5, 0.75]       # training values of v[0] after the normalize step


def tiny_chain(probability=True):
    return {
        "input": {"real": ["lowlevel.a", "lowlevel.v", "rhythm.junk"],
                  "string": ["tonal.k", "metadata.version.essentia"]},
        "steps": [
            {"type": "remove", "names": ["rhythm.junk"]},
            {"type": "fixlength", "sizes": {"lowlevel.a": 1, "lowlevel.v": 2, "tonal.k": 1,
                                            "metadata.version.essentia": 1}},
            {"type": "remove", "names": ["metadata.version.essentia"]},
            {"type": "enumerate", "names": ["tonal.k"], "maps": {"tonal.k": {"C": 0, "D": 1}}},
            {"type": "normalize", "coeffs": {"lowlevel.a": {"a": [2.0], "b": [-1.0]},
                                             "lowlevel.v": {"a": [0.5, 1.0], "b": [0.0, 0.25]}}},
            {"type": "gaussianize", "distribution": {"lowlevel.v": [DIST_V0, [0, 1, 2, 3]]}},
            {"type": "addfield", "string": ["highlevel.t"]},
            {"type": "svmtrain", "class_name": "highlevel.t", "classes": ["no", "yes"],
             "descriptors": ["lowlevel.a", "tonal.k", "lowlevel.v"],
             "model_text": MODEL_TEXT if probability else
             MODEL_TEXT.replace("probA -2.5\nprobB 0.1\n", ""),
             "probability": probability},
            {"type": "select", "names": ["highlevel.t", "highlevel.tProbability"]
             if probability else ["highlevel.t"]},
        ]}


def expected(a, v, k_code):
    """The chain computed by hand, step by step, with numpy float32 scalars."""
    xa = f32(f32(f32(a) * f32(2.0)) + f32(-1.0))
    v0 = f32(f32(f32(v[0]) * f32(0.5)) + f32(0.0))
    v1 = f32(f32(f32(v[1]) * f32(1.0)) + f32(0.25))
    lut = gaussianize_table(4)          # checked against scipy in test_history.py

    def rank(x, dist):
        dist = np.asarray(dist, dtype=np.float32)
        if x < dist[0]:
            r = 0
        elif x > dist[-1]:
            r = 4
        else:
            r = min(int(np.searchsorted(dist, x, side="right")), 3)
        return min(max(r, 1), 3)

    g0 = lut[rank(v0, DIST_V0)]
    g1 = lut[rank(v1, [0, 1, 2, 3])]
    x = [float(xa), float(k_code), float(g0), float(g1)]
    dot1 = sum(xi * si for xi, si in zip(x, SV1))
    dot2 = sum(xi * si for xi, si in zip(x, SV2))
    return 0.5 * dot1 + -0.25 * dot2 - 0.125


def test_tiny_chain(tmp_path):
    path = tmp_path / "tiny.history"
    write_history(path, tiny_chain())
    model = load_model(path)
    assert model.name == "tiny"
    rec = {"lowlevel": {"a": 0.3, "v": [0.6, 1.7]}, "rhythm": {"junk": [1, 2, 3]},
           "tonal": {"k": "D"}, "metadata": {"tags": {"title": "x"}}}
    dec = expected(0.3, [0.6, 1.7], 1)
    res = model.predict(rec)
    # libsvm order is (yes, no); probabilities_289 is checked against libsvm below
    p_yes, p_no = probabilities_289([dec], [-2.5], [0.1], 2)
    assert res["all"] == {"no": float(f32(p_no)), "yes": float(f32(p_yes))}
    assert res["value"] == ("yes" if p_yes >= p_no else "no")
    assert res["probability"] == max(res["all"].values())
    # unseen strings: next free codes 2, 3 in one instance; 2 again after reset
    seen = set()
    for s, code in (("X", 2), ("Y", 3), ("X", 2), ("C", 0)):
        rec["tonal"]["k"] = s
        p_yes, p_no = probabilities_289([expected(0.3, [0.6, 1.7], code)], [-2.5], [0.1], 2)
        got = model.predict(rec)["all"]["yes"]
        assert got == float(f32(p_yes))
        seen.add(got)
    assert len(seen) == 3       # the enum code does change the output
    model.reset()
    rec["tonal"]["k"] = "Y"
    p_yes, _ = probabilities_289([expected(0.3, [0.6, 1.7], 2)], [-2.5], [0.1], 2)
    assert model.predict(rec)["all"]["yes"] == float(f32(p_yes))
    # values outside the gaussianize range, and at the ends
    for v in ([-5.0, -5.0], [5.0, 50.0], [0.0, 0.0], [1.5, 2.75]):
        rec["tonal"]["k"] = "C"
        p_yes, _ = probabilities_289([expected(0.3, v, 0)], [-2.5], [0.1], 2)
        rec["lowlevel"]["v"] = v
        assert model.predict(rec)["all"]["yes"] == float(f32(p_yes)), v


def test_tiny_chain_without_probability(tmp_path):
    path = tmp_path / "vote.history"
    write_history(path, tiny_chain(probability=False))
    model = load_model(path)
    for a in (-3.0, 0.0, 0.3, 4.0):
        rec = {"lowlevel": {"a": a, "v": [0.6, 1.7]}, "rhythm": {"junk": 1.0},
               "tonal": {"k": "C"}}
        dec = expected(a, [0.6, 1.7], 0)
        res = model.predict(rec)
        assert res == {"value": "yes" if dec > 0 else "no", "probability": None, "all": {}}


def test_probabilities_289_two_classes():
    """§9.4: for 2 classes LIBSVM 2.89 runs the coupling solver: (0.5, 0.5) inside the dead
    band |r - 0.5| < 0.005, otherwise within 0.005 of the sigmoid r."""
    for dec in np.linspace(-3, 3, 121):
        f = dec * -1.3 + 0.2
        r = math.exp(-f) / (1 + math.exp(-f)) if f >= 0 else 1 / (1 + math.exp(f))
        p = probabilities_289([dec], [-1.3], [0.2], 2)
        assert abs(p[0] + p[1] - 1) < 1e-12
        if abs(r - 0.5) < 0.005:
            assert p == [0.5, 0.5]
        else:
            assert abs(p[0] - r) < 0.005


def test_probabilities_289_equal_libsvm_for_many_classes():
    """For K > 2 LIBSVM 3.x uses the same solver: compare with libsvm-official."""
    from libsvm import svmutil
    rng = np.random.default_rng(1)
    x = rng.normal(size=(60, 3))
    y = np.repeat([0, 1, 2, 3], 15)
    x += y[:, None] * 0.7
    m = svmutil.svm_train(y.tolist(), x.tolist(), "-b 1 -q -c 4 -g 0.5")
    k = m.get_nr_class()
    probs_a = [m.probA[i] for i in range(k * (k - 1) // 2)]
    probs_b = [m.probB[i] for i in range(k * (k - 1) // 2)]
    _, _, pv = svmutil.svm_predict([0] * 10, x[:10].tolist(), m, "-b 1 -q")
    _, _, dv = svmutil.svm_predict([0] * 10, x[:10].tolist(), m, "-q")
    for dec, want in zip(dv, pv):
        assert probabilities_289(dec, probs_a, probs_b, k) == pytest.approx(want, abs=0, rel=0)


def test_writer_regenerates_the_real_files(gaia_fixtures):
    """serialize(parse(f)) == f and build(chain_description(parse(f))) == f, byte for byte:
    every layout the writer derives equals the one Gaia stored."""
    for name in ("danceability.history", "test_svm_probability.history"):
        data = (gaia_fixtures / "history" / name).read_bytes()
        h = parse_history(data, name)
        assert serialize_history(h) == data
        desc = json.loads(json.dumps(chain_description(h)))
        assert history_bytes(desc) == data


def test_writer_rejects_bad_descriptions(tmp_path):
    bad = tiny_chain()
    bad["steps"][7]["descriptors"] = ["lowlevel.nothere"]
    with pytest.raises(MirkitError):
        write_history(tmp_path / "bad.history", bad)
    assert not (tmp_path / "bad.history").exists()
    bad = tiny_chain()
    bad["steps"][1]["sizes"]["lowlevel.gone"] = 3
    with pytest.raises(MirkitError, match="not in the layout"):
        history_bytes(bad)
    with pytest.raises(MirkitError, match="unknown transformation"):
        history_bytes({"input": {}, "steps": [{"type": "rca"}]})


def test_validate_model_text_rejects_garbage():
    good = MODEL_TEXT.encode()
    assert validate_model_text(good)["nr_class"] == 2
    for text in (good.replace(b"total_sv 2", b"total_sv 3"),
                 good.replace(b"nr_sv 1 1", b"nr_sv 1"),
                 good.replace(b"3:1 4:-1", b"4:1 3:-1"),
                 good.replace(b"rho 0.125", b"rho 0x1p3"),
                 good.replace(b"kernel_type linear", b"kernel_type precomputed"),
                 good.replace(b"SV\n", b""), b"\xff\xfe", b""):
        with pytest.raises(MirkitError):
            validate_model_text(text)


def test_pca_chain(tmp_path):
    """fixlength -> pca (matmult) -> addfield -> svm; small integers make the projection
    exact, so the expected decision value is computed by hand."""
    matrix = [[1, 2, 0, -1], [0.5, 0, 3, 1]]
    chain = {"input": {"real": ["a", "v"], "string": []},
             "steps": [{"type": "fixlength", "sizes": {"a": 1, "v": 3}},
                       {"type": "pca", "names": ["v", "a"], "matrix": matrix,
                        "result_name": "proj"},
                       {"type": "addfield", "string": ["t"]},
                       {"type": "svmtrain", "class_name": "t", "classes": ["no", "yes"],
                        "descriptors": ["proj"], "probability": False,
                        "model_text": "svm_type c_svc\nkernel_type linear\nnr_class 2\n"
                                      "total_sv 1\nrho 0.5\nlabel 1 0\nnr_sv 1 0\nSV\n"
                                      "1 1:1 2:-1 \n"}]}
    path = tmp_path / "p.history"
    write_history(path, chain)
    h = read_history(path)
    assert h.transformations[1].applier == "matmult"
    assert list(h.transformations[2].layout.descs) == [".proj"]
    model = load_model(path)
    for v, a in (([1, 2, 3], 4), ([0, 0, 1], -2), ([2, -1, 0], 1)):
        x = v + [a]                                     # columns in descriptorNames order
        proj = [sum(m * xi for m, xi in zip(row, x)) for row in matrix]
        dec = proj[0] - proj[1] - 0.5                   # <proj, (1, -1)> - rho
        want = "yes" if dec > 0 else "no"               # label order (1, 0): yes first
        assert model.predict({"a": a, "v": v})["value"] == want
    d = chain_description(h)
    assert d["steps"][1]["matrix"] == [[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 3.0, 1.0]]
    assert history_bytes(d) == path.read_bytes()


def test_distribute_ranks_follow_the_spec():
    """history-format.md §7.6 rank rules, checked against np.searchsorted per dimension, with
    duplicates in the tables, values equal to table entries, out-of-range values and NaN."""
    from mirkit.gaia.history import _Distribute
    rng = np.random.default_rng(5)
    for n in (2, 3, 7, 245):
        m = 6
        tables = np.sort(rng.integers(0, 5, size=(m, n)).astype(np.float32), axis=1)
        lut = gaussianize_table(n)
        x = rng.integers(-1, 7, size=(40, m)).astype(np.float32)
        x[::7] += np.float32(0.5)
        x[3, 2] = np.nan
        x[4, 1] = np.inf
        x[5, 0] = -np.inf
        op = _Distribute([(np.arange(m), tables, n, lut)])
        got = op(x.copy(), {})[0]
        for d in range(m):
            for i in range(x.shape[0]):
                v = x[i, d]
                if np.isnan(v):
                    r = n - 1
                elif v < tables[d, 0]:
                    r = 0
                elif v > tables[d, -1]:
                    r = n
                else:
                    r = min(int(np.searchsorted(tables[d], v, side="right")), n - 1)
                r = min(max(r, 1), n - 1)
                assert got[i, d] == lut[r], (n, d, i, v)


def test_probabilities_batch_equals_scalar():
    """The numpy-over-rows coupling solver is bit-identical to the scalar one (and stops each
    row at the same iteration), including dead-band and NaN rows."""
    from mirkit.gaia.history_svm import probabilities_289_batch
    rng = np.random.default_rng(0)
    for k in (2, 3, 5, 17):
        npair = k * (k - 1) // 2
        a = rng.normal(-1.5, 0.5, npair).tolist()
        b = rng.normal(0, 0.3, npair).tolist()
        dec = rng.normal(0, 2, (200, npair)).tolist()
        dec[0] = [0.0] * npair
        dec[1] = [float("nan")] * npair
        batch = probabilities_289_batch(dec, a, b, k)
        single = np.array([probabilities_289(d, a, b, k) for d in dec])
        np.testing.assert_array_equal(batch, single)
