"""Command-line tools: each module defines one Tool subclass and ``main``.

The tools run numpy's BLAS and libsvm's OpenMP single-threaded (unless OMP_NUM_THREADS is
set): parallelism comes from ``-j`` worker processes or Dask workers, threads on top of them
oversubscribe the cores, and BLAS threading changes the last bits of matrix products, so
records would depend on ``-j`` and on where they ran. Set here, before numpy is loaded.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
