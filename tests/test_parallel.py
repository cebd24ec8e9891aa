import os

from mirkit.parallel import ordered_map


def square(x):
    return x * x


def omp_threads(_):
    return os.environ.get("OMP_NUM_THREADS")


def test_order_kept_with_several_jobs():
    assert list(ordered_map(square, range(40), jobs=2, window=3)) == [x * x for x in range(40)]


def test_in_process_when_one_job():
    assert list(ordered_map(square, iter(range(5)), jobs=1)) == [0, 1, 4, 9, 16]


def test_workers_run_single_threaded_openmp():
    assert set(ordered_map(omp_threads, range(4), jobs=2)) == {"1"}
