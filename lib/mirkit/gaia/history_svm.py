"""The SVM step of a Gaia ``.history`` chain (``svmtrain`` -> ``svmpredict``).

* :func:`validate_model_text` checks an embedded libsvm text model completely in Python (every
  header field, every support-vector line) before it is handed to libsvm's C loader, so that a
  corrupt file can never reach C code with input it was not written for.
* :class:`LibsvmModel` loads the text with libsvm-official and obtains the pairwise decision
  values (``svm_predict_values``) for dense float64 vectors built with numpy.
* :func:`probabilities_289` turns decision values into class probabilities the way LIBSVM 2.89
  (the version inside Gaia) does: pairwise sigmoid ``1/(1+exp(A*f+B))`` clamped to
  ``[1e-7, 1-1e-7]``, then the iterative pairwise-coupling solver of Wu, Lin and Weng (2004,
  "Probability estimates for multi-class classification by pairwise coupling", method 2) for
  **every** number of classes, including 2.  LIBSVM >= 3.0 returns the sigmoid directly for 2
  classes, which differs from 2.89 by up to 0.004 (history-format.md §9.4).
"""

import ctypes
import math
import os
import re
import tempfile

import numpy as np

from ..errors import MirkitError

SVM_TYPES = {"c_svc": 0, "nu_svc": 1}
KERNEL_TYPES = {"linear": 0, "polynomial": 1, "rbf": 2, "sigmoid": 3}
MAX_CLASSES = 1000
MAX_INDEX = 1 << 24

_FLOAT_RE = re.compile(r"^[+-]?(?:(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|inf|infinity|nan)$",
                       re.IGNORECASE)
_INT_RE = re.compile(r"^[+-]?\d{1,10}$")


def _num(token, what, source):
    if not _FLOAT_RE.match(token):
        raise MirkitError(f"corrupt libsvm model: {what} {token[:40]!r} is not a number", source)
    return float(token)


def _int(token, what, source, lo=None, hi=None):
    if not _INT_RE.match(token):
        raise MirkitError(f"corrupt libsvm model: {what} {token[:40]!r} is not an integer", source)
    value = int(token)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise MirkitError(f"corrupt libsvm model: {what} {value} out of range", source)
    return value


def validate_model_text(data, source=None):
    """Parse and check a libsvm text model (bytes); return a dict of its header.

    Raises MirkitError for anything libsvm's loader was not written to handle.
    """
    try:
        text = bytes(data).decode("ascii")
    except UnicodeDecodeError:
        raise MirkitError("corrupt libsvm model: not ASCII text", source) from None
    if "\x00" in text or "\r" in text:
        raise MirkitError("corrupt libsvm model: unexpected control characters", source)
    lines = text.split("\n")
    header = {}
    order = []
    i = 0
    nr_class = None
    while True:
        if i >= len(lines):
            raise MirkitError("corrupt libsvm model: no SV section", source)
        tokens = lines[i].split()
        i += 1
        if not tokens:
            raise MirkitError("corrupt libsvm model: empty header line", source)
        key, values = tokens[0], tokens[1:]
        if key in header:
            raise MirkitError(f"corrupt libsvm model: duplicate header field {key!r}", source)
        order.append(key)
        if key == "SV":
            if values:
                raise MirkitError("corrupt libsvm model: junk after 'SV'", source)
            break
        if key == "svm_type":
            if len(values) != 1 or values[0] not in SVM_TYPES:
                raise MirkitError(f"unsupported libsvm svm_type {' '.join(values)[:40]!r} "
                                  "(only c_svc and nu_svc)", source)
            header[key] = values[0]
        elif key == "kernel_type":
            if len(values) != 1 or values[0] not in KERNEL_TYPES:
                raise MirkitError(f"unsupported libsvm kernel_type {' '.join(values)[:40]!r}",
                                  source)
            header[key] = values[0]
        elif key == "degree":
            if len(values) != 1:
                raise MirkitError("corrupt libsvm model: bad degree line", source)
            header[key] = _int(values[0], "degree", source, 0, 1000)
        elif key in ("gamma", "coef0"):
            if len(values) != 1:
                raise MirkitError(f"corrupt libsvm model: bad {key} line", source)
            header[key] = _num(values[0], key, source)
        elif key in ("nr_class", "total_sv"):
            if len(values) != 1:
                raise MirkitError(f"corrupt libsvm model: bad {key} line", source)
            hi = MAX_CLASSES if key == "nr_class" else 10_000_000
            header[key] = _int(values[0], key, source, 2 if key == "nr_class" else 1, hi)
            if key == "nr_class":
                nr_class = header[key]
        elif key in ("rho", "probA", "probB", "label", "nr_sv"):
            if nr_class is None:
                raise MirkitError(f"corrupt libsvm model: {key} before nr_class", source)
            want = nr_class if key in ("label", "nr_sv") else nr_class * (nr_class - 1) // 2
            if len(values) != want:
                raise MirkitError(f"corrupt libsvm model: {key} has {len(values)} values, "
                                  f"expected {want}", source)
            if key in ("label", "nr_sv"):
                header[key] = [_int(v, key, source, 0 if key == "nr_sv" else -(1 << 31),
                                    (1 << 31) - 1) for v in values]
            else:
                header[key] = [_num(v, key, source) for v in values]
        else:
            raise MirkitError(f"corrupt libsvm model: unknown header field {key[:40]!r}", source)
    for key in ("svm_type", "kernel_type", "nr_class", "total_sv", "rho", "label", "nr_sv"):
        if key not in header:
            raise MirkitError(f"corrupt libsvm model: header field {key} missing", source)
    if ("probA" in header) != ("probB" in header):
        raise MirkitError("corrupt libsvm model: probA without probB or vice versa", source)
    if sum(header["nr_sv"]) != header["total_sv"]:
        raise MirkitError("corrupt libsvm model: nr_sv does not add up to total_sv", source)
    if len(set(header["label"])) != nr_class:
        raise MirkitError("corrupt libsvm model: repeated class label", source)
    total = header["total_sv"]
    sv_lines = lines[i:]
    while sv_lines and not sv_lines[-1].strip():
        sv_lines.pop()
    if len(sv_lines) != total:
        raise MirkitError(f"corrupt libsvm model: {len(sv_lines)} support vectors, header says "
                          f"{total}", source)
    ncoef = nr_class - 1
    max_index = 0
    for n, line in enumerate(sv_lines):
        tokens = line.split()
        if len(tokens) < ncoef:
            raise MirkitError(f"corrupt libsvm model: support vector {n} is too short", source)
        for tok in tokens[:ncoef]:
            _num(tok, "coefficient", source)
        last = 0
        for tok in tokens[ncoef:]:
            idx, sep, val = tok.partition(":")
            if not sep:
                raise MirkitError(f"corrupt libsvm model: bad feature {tok[:40]!r}", source)
            k = _int(idx, "feature index", source, 1, MAX_INDEX)
            if k <= last:
                raise MirkitError("corrupt libsvm model: feature indices not increasing", source)
            last = k
            _num(val, "feature value", source)
        max_index = max(max_index, last)
    header["max_index"] = max_index
    header["text"] = "\n".join(lines[:i] + sv_lines) + "\n"
    return header


def _sigmoid_predict(dec, a, b):
    f = dec * a + b
    if f >= 0:
        e = math.exp(-f)
        return e / (1.0 + e)
    return 1.0 / (1 + math.exp(f))


def multiclass_probability(k, r):
    """Wu-Lin-Weng method 2 (as in LIBSVM 2.89 and later), in plain double arithmetic.

    ``r[i][j]`` is the pairwise probability of class i against j. The operations and their
    order follow the published algorithm, so that results agree to the last bit.
    """
    max_iter = max(100, k)
    eps = 0.005 / k
    q = [[0.0] * k for _ in range(k)]
    p = [1.0 / k] * k
    for t in range(k):
        qtt = 0.0
        for j in range(t):
            qtt += r[j][t] * r[j][t]
            q[t][j] = q[j][t]
        for j in range(t + 1, k):
            qtt += r[j][t] * r[j][t]
            q[t][j] = -r[j][t] * r[t][j]
        q[t][t] = qtt
    qp = [0.0] * k
    for _ in range(max_iter):
        pqp = 0.0
        for t in range(k):
            acc = 0.0
            qt = q[t]
            for j in range(k):
                acc += qt[j] * p[j]
            qp[t] = acc
            pqp += p[t] * acc
        max_error = 0.0
        for t in range(k):
            error = abs(qp[t] - pqp)
            if error > max_error:
                max_error = error
        if max_error < eps:
            break
        for t in range(k):
            qt = q[t]
            diff = (-qp[t] + pqp) / qt[t]
            p[t] += diff
            pqp = (pqp + diff * (diff * qt[t] + 2 * qp[t])) / (1 + diff) / (1 + diff)
            for j in range(k):
                qp[j] = (qp[j] + diff * qt[j]) / (1 + diff)
                p[j] /= (1 + diff)
    return p


def probabilities_289(dec_values, prob_a, prob_b, k):
    """Class probabilities (libsvm label order) from pairwise decision values, LIBSVM 2.89."""
    min_prob = 1e-7
    r = [[0.0] * k for _ in range(k)]
    n = 0
    for i in range(k):
        for j in range(i + 1, k):
            v = min(max(_sigmoid_predict(dec_values[n], prob_a[n], prob_b[n]), min_prob),
                    1 - min_prob)
            r[i][j] = v
            r[j][i] = 1 - v
            n += 1
    return multiclass_probability(k, r)


def _sigmoids(dec_rows, prob_a, prob_b):
    """Clamped pairwise sigmoids of a batch (list of rows), with math.exp as in C."""
    min_prob = 1e-7
    hi = 1 - min_prob
    out = []
    exp = math.exp
    for row in dec_rows:
        vals = []
        for dec, a, b in zip(row, prob_a, prob_b):
            f = dec * a + b
            if f >= 0:
                e = exp(-f)
                v = e / (1.0 + e)
            else:
                v = 1.0 / (1 + exp(f))
            vals.append(min(max(v, min_prob), hi))
        out.append(vals)
    return np.asarray(out, dtype=np.float64).reshape(len(dec_rows), len(prob_a))


def probabilities_289_batch(dec_rows, prob_a, prob_b, k):
    """:func:`probabilities_289` for many rows at once (numpy over rows), bit-identical.

    Every scalar operation of the solver becomes the same IEEE operation on a vector of rows
    (no reordering: sums over j use sequential ``cumsum``), and each row stops iterating at
    the iteration where the scalar version would stop.
    """
    n = len(dec_rows)
    if n == 0:
        return np.zeros((0, k))
    r_pairs = _sigmoids(dec_rows, prob_a, prob_b)
    r = np.zeros((n, k, k))
    m = 0
    for i in range(k):
        for j in range(i + 1, k):
            r[:, i, j] = r_pairs[:, m]
            r[:, j, i] = 1 - r_pairs[:, m]
            m += 1
    q = np.zeros((n, k, k))
    for t in range(k):
        qtt = np.zeros(n)
        for j in range(t):
            qtt = qtt + r[:, j, t] * r[:, j, t]
            q[:, t, j] = q[:, j, t]
        for j in range(t + 1, k):
            qtt = qtt + r[:, j, t] * r[:, j, t]
            q[:, t, j] = -r[:, j, t] * r[:, t, j]
        q[:, t, t] = qtt
    p = np.full((n, k), 1.0 / k)
    eps = 0.005 / k
    active = np.arange(n)
    for _ in range(max(100, k)):
        if active.size == 0:
            break
        qa = q[active]
        pa = p[active]
        # Qp[t] = sum_j Q[t][j]*p[j], summed in order j = 0..k-1 (cumsum is sequential)
        qp = np.cumsum(qa * pa[:, None, :], axis=2)[:, :, -1]
        pqp = np.cumsum(pa * qp, axis=1)[:, -1]
        max_error = np.max(np.abs(qp - pqp[:, None]), axis=1)
        going = max_error >= eps
        if not going.all():
            active = active[going]
            qa, pa, qp, pqp = qa[going], pa[going], qp[going], pqp[going]
            if active.size == 0:
                break
        for t in range(k):
            qtt = qa[:, t, t]
            diff = (-qp[:, t] + pqp) / qtt
            pa[:, t] += diff
            pqp = (pqp + diff * (diff * qtt + 2 * qp[:, t])) / (1 + diff) / (1 + diff)
            one = (1 + diff)[:, None]
            qp = (qp + diff[:, None] * qa[:, t, :]) / one
            pa = pa / one
        p[active] = pa
    return p


def vote(dec_values, k):
    """One-vs-one voting: index (libsvm label order) of the winner; ties to the lowest."""
    votes = [0] * k
    n = 0
    for i in range(k):
        for j in range(i + 1, k):
            if dec_values[n] > 0:
                votes[i] += 1
            else:
                votes[j] += 1
            n += 1
    best = 0
    for i in range(1, k):
        if votes[i] > votes[best]:
            best = i
    return best


_NODE = np.dtype([("index", np.intc), ("value", np.float64)], align=True)


class LibsvmModel:
    """A validated libsvm text model loaded into libsvm-official, for decision values."""

    def __init__(self, model_bytes, source=None):
        self.header = validate_model_text(model_bytes, source)
        self.nr_class = self.header["nr_class"]
        self.labels = self.header["label"]
        self.prob_a = self.header.get("probA")
        self.prob_b = self.header.get("probB")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        try:
            from libsvm import svm as _svm
        except ImportError as exc:  # pragma: no cover - dependency missing
            raise MirkitError(f"libsvm-official is required for .history models: {exc}",
                              source) from None
        self._svm = _svm
        # libsvm loads models from files only: a private temporary file holds the (validated)
        # text for the duration of the call
        try:
            fd, path = tempfile.mkstemp(suffix=".libsvm", prefix="mirkit-")
        except OSError as exc:
            raise MirkitError(f"cannot create a temporary file for the SVM model: {exc}",
                              source) from None
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(self.header.pop("text"))
            ptr = _svm.libsvm.svm_load_model(os.fsencode(path))
        except OSError as exc:
            raise MirkitError(f"cannot write a temporary file for the SVM model: {exc}",
                              source) from None
        finally:
            try:
                os.unlink(path)
            except OSError:
                pass
        if not ptr:
            raise MirkitError("libsvm could not load the embedded model", source)
        # keep the pointer and free it ourselves (libsvm's own __del__ fails at shutdown)
        self._ptr = ptr
        self._free = _svm.libsvm.svm_free_and_destroy_model
        self._model = ptr
        self._dec = (ctypes.c_double * max(1, self.nr_class * (self.nr_class - 1) // 2))()
        self._nodes = None

    def __del__(self):
        ptr = getattr(self, "_ptr", None)
        if ptr:
            try:
                self._free(ctypes.byref(ptr))
            except Exception:  # pragma: no cover - interpreter shutdown
                pass
            self._ptr = None

    def decision_values(self, x):
        """Pairwise decision values (label-pair order) for one dense float64 vector ``x``."""
        d = len(x)
        if self._nodes is None or len(self._nodes) != d + 1:
            self._nodes = np.zeros(d + 1, dtype=_NODE)
            self._nodes["index"][:d] = np.arange(1, d + 1)
            self._nodes["index"][d] = -1
            self._node_ptr = self._nodes.ctypes.data_as(ctypes.POINTER(self._svm.svm_node))
        self._nodes["value"][:d] = x
        self._svm.libsvm.svm_predict_values(self._model, self._node_ptr, self._dec)
        return self._dec[:self.nr_class * (self.nr_class - 1) // 2]
