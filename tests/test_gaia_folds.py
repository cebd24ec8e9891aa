"""Gaia's fold assignment (gaia.md §6.1) and the grouped folds."""

import random

import pytest

from mirkit.errors import MirkitError
from mirkit.gaia.folds import check_fold_sizes, gaia_folds, group_folds


def test_fold_sizes_from_spec():
    # ceil(n_c / nfold) chunks: 6 -> [2,2,2,0,0]; 7 -> [2,2,2,1,0]; 11 -> [3,3,3,2,0];
    # 101 -> [21,21,21,21,17] (gaia.md §6.1)
    for n, sizes in [(6, [2, 2, 2, 0, 0]), (7, [2, 2, 2, 1, 0]), (11, [3, 3, 3, 2, 0]),
                     (101, [21, 21, 21, 21, 17])]:
        labels = {f"id{i:03d}": "a" for i in range(n)}
        folds, _ = gaia_folds(labels, 5, 1)
        assert [len(f) for f in folds] == sizes


def test_hand_computed_assignment():
    """Spelled out by hand: per class, ids in groundtruth order, random.seed(1) then
    random.shuffle, chunks of ceil(n_c/3)."""
    labels = {"x1": "b", "x2": "a", "x3": "b", "x4": "a", "x5": "b", "x6": "a", "x7": "b"}
    a = ["x2", "x4", "x6"]
    b = ["x1", "x3", "x5", "x7"]
    random.seed(1)
    random.shuffle(a)
    random.seed(1)
    random.shuffle(b)
    # a: size 1 chunks; b: size 2 chunks
    expected = [a[0:1] + b[0:2], a[1:2] + b[2:4], a[2:3] + b[4:6]]
    folds, fold_of = gaia_folds(labels, 3, 1)
    assert folds == expected
    assert fold_of == {pid: i for i, f in enumerate(expected) for pid in f}


def test_float_seed_equals_int_seed():
    # train_model.py passes the seed as a float: random.seed(1.0) == random.seed(1) in CPython 3
    labels = {str(i): "c" for i in range(10)}
    assert gaia_folds(labels, 5, 1) == gaia_folds(labels, 5, 1.0)
    assert gaia_folds(labels, 5, 1)[1] != gaia_folds(labels, 5, 2)[1]


def test_class_order_does_not_change_membership():
    # same per-class id order, classes first seen in a different order
    ids_a = [f"a{i}" for i in range(9)]
    ids_b = [f"b{i}" for i in range(7)]
    first_a = {**{i: "a" for i in ids_a}, **{i: "b" for i in ids_b}}
    first_b = {**{i: "b" for i in ids_b}, **{i: "a" for i in ids_a}}
    assert gaia_folds(first_a, 4, 7)[1] == gaia_folds(first_b, 4, 7)[1]


def test_fold_size_check():
    check_fold_sizes({"a": "x", "b": "x", "c": "y", "d": "y"}, 2)
    with pytest.raises(MirkitError, match="'y' has 1"):
        check_fold_sizes({"a": "x", "b": "x", "c": "y"}, 2)


def test_group_folds_keep_groups_whole_and_stratify():
    labels, groups = {}, {}
    for i in range(60):
        labels[f"t{i}"] = "rock" if i < 30 else "jazz"
        groups[f"t{i}"] = f"artist{i // 3}"  # 20 artists of 3 tracks, one class each
    folds, fold_of = group_folds(labels, groups, 5, seed=1)
    for g in set(groups.values()):
        assert len({fold_of[p] for p in labels if groups[p] == g}) == 1
    for f in folds:
        assert sorted(labels[p] for p in f).count("rock") == 6  # 2 artists per class per fold
        assert len(f) == 12
    assert group_folds(labels, groups, 5, seed=1) == (folds, fold_of)
    with pytest.raises(MirkitError, match="group"):
        group_folds({"a": "x", "b": "y"}, {"a": "g", "b": "g"}, 2)
