"""Bounded-memory signal handling: block decoding + resampling, signal stores, streaming FIR.

A one-hour stereo file is 1.2 GB as float32, more than the extractor may use, so the
pipeline never holds the decoded file: :func:`decode_blocks` yields 44.1 kHz blocks
(decoded by soundfile in blocks, resampled by a stateful libsamplerate ``sinc_medium``
converter, trimmed to ``[start, end)``), and the mono signal goes to a :class:`SignalStore`
(in memory for ordinary tracks, a temporary float32 file for long ones) that the analysis
passes read back block by block with :meth:`SignalStore.read`.
"""

import tempfile

import numpy as np

from .audio import DECODE_BLOCK, read_blocks  # DECODE_BLOCK: input frames per read

#: above this many bytes a store spills to a temporary file
MEMORY_LIMIT = 96 << 20


class ArrayStore:
    """A store over an in-memory array (same interface as :class:`SignalStore`)."""

    def __init__(self, x):
        self._x = np.asarray(x, np.float32)

    def __len__(self):
        return len(self._x)

    def read(self, a, b):
        """Samples ``[a, b)``; indices outside ``[0, len)`` read as zeros."""
        n = len(self._x)
        if a >= 0 and b <= n:
            return self._x[a:b]
        out = np.zeros(max(0, b - a), np.float32)
        lo, hi = max(a, 0), min(b, n)
        if hi > lo:
            out[lo - a:hi - a] = self._x[lo:hi]
        return out

    def array(self):
        return self._x

    def close(self):
        self._x = None


class SignalStore(ArrayStore):
    """Append-only float32 signal, in memory or (past ``MEMORY_LIMIT``) in a temp file."""

    def __init__(self, expected_length=0, limit=None):
        self._n = 0
        self._file = None
        self._buf = None
        if limit is None:
            limit = MEMORY_LIMIT          # read at call time (tests lower it)
        if expected_length * 4 > limit:
            self._file = tempfile.TemporaryFile(prefix="mirkit-signal-")
        else:
            self._buf = np.empty(max(int(expected_length), 1024), np.float32)

    def append(self, block):
        block = np.ascontiguousarray(block, np.float32)
        if self._file is not None:
            self._file.seek(self._n * 4)
            self._file.write(block.tobytes())
        else:
            need = self._n + len(block)
            if need > len(self._buf):
                grown = np.empty(max(need, int(len(self._buf) * 1.5)), np.float32)
                grown[:self._n] = self._buf[:self._n]
                self._buf = grown
            self._buf[self._n:need] = block
        self._n += len(block)

    def __len__(self):
        return self._n

    @property
    def _x(self):  # ArrayStore.read on the in-memory buffer
        return self._buf[:self._n]

    def read(self, a, b):
        if self._file is None:
            return ArrayStore.read(self, a, b)
        out = np.zeros(max(0, b - a), np.float32)
        lo, hi = max(a, 0), min(b, self._n)
        if hi > lo:
            self._file.seek(lo * 4)
            out[lo - a:hi - a] = np.frombuffer(self._file.read((hi - lo) * 4), np.float32)
        return out

    @property
    def spilled(self):
        """True when the samples live in a temporary file (long inputs)."""
        return self._file is not None

    def array(self):
        """The whole signal as one array (reads a spilled store into memory)."""
        if self._file is None:
            return self._buf[:self._n]
        return self.read(0, self._n)

    def close(self):
        if self._file is not None:
            self._file.close()
            self._file = None
        self._buf = None


class ScaledStore:
    """``clip(store * factor, -1, 1)`` computed on read (the EasyLoader signal S0);
    ``clip=False`` for a plain scaling."""

    def __init__(self, store, factor, clip=True):
        self.store = store
        self.factor = np.float32(factor)
        self.clip = clip

    def __len__(self):
        return len(self.store)

    @property
    def spilled(self):
        return bool(getattr(self.store, "spilled", False))

    def read(self, a, b):
        y = self.store.read(a, b) * self.factor
        if self.clip:
            np.clip(y, -1.0, 1.0, out=y)
        return y

    def array(self):
        return self.read(0, len(self.store))


def iter_store_blocks(store, block=1 << 20):
    """Yield ``(start, samples)`` consecutive blocks of a store."""
    n = len(store)
    for a in range(0, n, block):
        yield a, store.read(a, min(n, a + block))


class StreamingFIR:
    """Causal FIR filtering of consecutive blocks (zero initial state) with the FFT
    overlap-add of :func:`mirkit.extractor.signal.fir_filter`: each call filters the new
    block preceded by the last ``len(h)-1`` input samples, so the output equals one
    filtering of the concatenated input."""

    def __init__(self, h, channels=1, single=False):
        self.h = np.asarray(h)
        self.single = single
        self.hist = np.zeros((len(h) - 1, channels), np.float32)

    def __call__(self, block):
        from .signal import fir_filter
        block = np.asarray(block, np.float32)
        one_d = block.ndim == 1
        b2 = block[:, None] if one_d else block
        seg = np.concatenate([self.hist, b2]) if len(self.hist) else b2
        y = fir_filter(self.h, seg, out_dtype=np.float32 if self.single else np.float64,
                       single=self.single)
        k = len(self.hist)
        if k:
            self.hist = seg[-k:].copy()
        y = y[k:]
        return y[:, 0] if one_d else y


def decode_blocks(path, shown, rate_out, start_time=0.0, end_time=1e6):
    """Decode ``path`` block by block: yields 44.1 kHz ``(n, channels)`` float32 blocks,
    trimmed to ``[int(start*rate_out), int(end*rate_out))``.

    Returns (via ``StopIteration.value``, see :func:`run_decode`) the number of decoded
    input frames. Resampling uses one stateful ``sinc_medium`` converter with the float32
    ratio and Essentia's ``ceil(n*ratio) - 1`` output length.
    """
    rate_out = float(rate_out)
    t0 = int(start_time * rate_out)
    t1 = int(min(end_time, 1e9) * rate_out)
    decoded = 0
    emitted = 0            # output samples produced so far (before trimming)

    def trim(block):
        nonlocal emitted
        a, b = emitted, emitted + len(block)
        emitted = b
        lo, hi = max(a, t0), min(b, t1)
        if hi <= lo:
            return None
        return block[lo - a:hi - a]

    blocks = read_blocks(path, DECODE_BLOCK, shown)
    sr_in, ch, _ = next(blocks)
    resampler = None
    ratio = 1.0
    if int(sr_in) != int(rate_out):
        import samplerate
        ratio = float(np.float32(rate_out / float(sr_in)))
        resampler = samplerate.Resampler("sinc_medium", channels=ch)
    for block in blocks:
        last = len(block) < DECODE_BLOCK
        decoded += len(block)
        if emitted >= t1:
            if last:
                break
            continue              # past the end time: only count the decoded frames
        if resampler is None:
            out = block
        else:
            if last:
                # the converter keeps its filter delay: flush it with zeros (what the
                # one-shot converter assumes past the end), then cut to Essentia's
                # output length ceil(n*ratio) - 1
                block = np.concatenate([block, np.zeros((8192, ch), np.float32)])
            out = resampler.process(block, ratio, end_of_input=last)
            out = np.asarray(out, np.float32).reshape(-1, ch)
            if last:
                n_total = max(0, int(np.ceil(decoded * ratio)) - 1)
                out = out[:max(0, n_total - emitted)]
        if len(out):
            piece = trim(out)
            if piece is not None and len(piece):
                yield piece
        if last:
            break
    blocks.close()
    return decoded
