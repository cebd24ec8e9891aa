"""Frame cutting, windows and magnitude spectra, as Essentia's extractor does them.

This is the stable internal API shared by every part of the extractor (lowlevel here;
rhythm.py and tonal.py of issue 6). Everything is float32 (Essentia's ``Real``) and
vectorised over frames: frames are rows of a 2-D array, one batched FFT per call.

Frame alignment (extractor.md §3.4, Essentia's streaming FrameCutter):

* ``start_from_zero=False`` (lowlevel, tonal, OnsetRate frames): frame ``k`` starts at
  ``s_k = -((F+1)//2) + k*H`` (the first frame is centred on sample 0); samples outside
  ``[0, N)`` are zeros. The last frame is the first ``k`` with ``s_k + F//2 >= N``
  (for F = 2H: ``ceil(N/H) + 1`` frames).
* ``start_from_zero=True`` (average loudness, EBU R128, replay gain, Degara beat tracker):
  ``s_k = k*H``; the last frame is the first ``k`` with ``s_k + F >= N`` (zero-padded).

Silent frames (``mean(frame**2) < 1e-10`` on the raw frame), ``silent_frames=``:

* ``"noise"`` (extractor default): ``frame + 1e-10 * U(-1, 1)``, the noise drawn from
  ``numpy.random.default_rng([F, H, k])`` with ``k`` the 0-based index of the frame in its
  stream (the project's deterministic version of Essentia's NoiseAdder; Decisions item 4);
* ``"keep"``: unchanged;
* ``"drop"``: the frame is left out (the returned ``index`` array says which remain).

Typical use::

    from mirkit.extractor import framing
    for index, frames in framing.iter_frame_blocks(x, 4096, 2048):      # noise on silence
        spec = framing.spectrum(frames, "blackmanharris62")            # (n, 2049) float32
"""

import numpy as np

from ..errors import MirkitError

#: threshold of ``mean(frame**2)`` below which a frame is "silent" (Essentia's isSilent)
SILENCE_POWER = 1e-10
#: amplitude of the noise added to silent frames (NoiseAdder level -100 dB)
NOISE_LEVEL = 1e-10
SILENT_FRAME_MODES = ("noise", "keep", "drop")
#: default number of frames per block in :func:`iter_frame_blocks` (bounds memory)
BLOCK_FRAMES = 2048


def _first_offset(frame_size, start_from_zero):
    return 0 if start_from_zero else -((frame_size + 1) // 2)


def frame_count(n_samples, frame_size, hop_size, start_from_zero=False):
    """Number of frames Essentia's streaming FrameCutter emits for ``n_samples`` samples.

    0 for an empty signal. See the module docstring for the end-of-stream rule.
    """
    n = int(n_samples)
    if n <= 0:
        return 0
    F, H = int(frame_size), int(hop_size)
    if H <= 0 or F <= 0:
        raise MirkitError(f"invalid frame size {F} / hop size {H}")
    if start_from_zero:
        # first k with k*H + F >= N
        k = max(0, -(-(n - F) // H))
    else:
        # first k with -((F+1)//2) + F//2 + k*H >= N
        c = (F + 1) // 2 - F // 2
        k = max(0, -(-(n + c) // H))
    return k + 1


def frame_starts(n_samples, frame_size, hop_size, start_from_zero=False):
    """Start sample (possibly negative) of every frame, as an int64 array."""
    n = frame_count(n_samples, frame_size, hop_size, start_from_zero)
    return _first_offset(frame_size, start_from_zero) + np.arange(n, dtype=np.int64) * int(hop_size)


def _cut(x, first, count, frame_size, hop_size, start_from_zero):
    """Frames ``first .. first+count-1`` as a new (count, F) float32 array."""
    F, H = int(frame_size), int(hop_size)
    if count <= 0:
        return np.zeros((0, F), np.float32)
    s0 = _first_offset(F, start_from_zero) + first * H
    s1 = s0 + (count - 1) * H + F          # one past the last sample needed
    if hasattr(x, "read"):                 # a signal store (mirkit.extractor.stream)
        seg = np.array(x.read(s0, s1), np.float32)
    else:
        lo, hi = max(s0, 0), min(s1, len(x))
        seg = np.zeros(s1 - s0, np.float32)
        if hi > lo:
            seg[lo - s0:hi - s0] = x[lo:hi]
    view = np.lib.stride_tricks.as_strided(
        seg, shape=(count, F), strides=(H * seg.strides[0], seg.strides[0]), writeable=False)
    return np.array(view)


def silent_mask(frames):
    """Boolean mask of silent frames: ``mean(frame**2) < 1e-10`` (raw, un-windowed frames)."""
    f = np.asarray(frames, np.float32)
    if f.shape[1] == 0:
        return np.ones(len(f), bool)
    power = np.einsum("ij,ij->i", f, f) / np.float32(f.shape[1])
    return power < SILENCE_POWER


def silence_noise(frame_size, hop_size, k, length=None):
    """The deterministic noise vector for frame ``k`` of a (frame_size, hop_size) stream."""
    rng = np.random.default_rng([int(frame_size), int(hop_size), int(k)])
    n = int(frame_size if length is None else length)
    return (NOISE_LEVEL * rng.uniform(-1.0, 1.0, n)).astype(np.float32)


def handle_silent_frames(frames, index, frame_size, hop_size, mode="noise"):
    """Apply the silentFrames rule in place (noise) or by selection (drop).

    ``index`` holds the stream index of each row. Returns ``(index, frames)``.
    """
    if mode == "keep" or len(frames) == 0:
        return index, frames
    if mode not in SILENT_FRAME_MODES:
        raise MirkitError(f"silentFrames must be one of {', '.join(SILENT_FRAME_MODES)}, not {mode!r}")
    mask = silent_mask(frames)
    if not mask.any():
        return index, frames
    if mode == "drop":
        keep = ~mask
        return index[keep], frames[keep]
    if not frames.flags.writeable:
        frames = np.array(frames)
    for row in np.flatnonzero(mask):
        frames[row] += silence_noise(frame_size, hop_size, index[row], frames.shape[1])
    return index, frames


def cut_frames(x, frame_size, hop_size, start_from_zero=False, silent_frames="noise",
               first=0, count=None):
    """Cut frames ``first .. first+count-1`` (default: all) of the 1-D signal ``x``.

    Returns ``(index, frames)``: ``index`` is the int64 stream index of each returned frame,
    ``frames`` a float32 array (n, frame_size). With ``silent_frames="drop"`` fewer rows than
    ``count`` can come back. ``x`` may also be a signal store (an object with ``len()`` and
    ``read(a, b)``, see :mod:`mirkit.extractor.stream`): only the needed samples are read.
    """
    if not hasattr(x, "read"):
        x = np.asarray(x, np.float32)
    total = frame_count(len(x), frame_size, hop_size, start_from_zero)
    if count is None:
        count = total - first
    count = max(0, min(count, total - first))
    frames = _cut(x, first, count, frame_size, hop_size, start_from_zero)
    index = np.arange(first, first + count, dtype=np.int64)
    return handle_silent_frames(frames, index, frame_size, hop_size, silent_frames)


def iter_frame_blocks(x, frame_size, hop_size, start_from_zero=False, silent_frames="noise",
                      block_frames=BLOCK_FRAMES):
    """Yield ``(index, frames)`` blocks of at most ``block_frames`` frames covering the whole
    stream, in order (same values as one :func:`cut_frames` call, bounded memory)."""
    total = frame_count(len(x), frame_size, hop_size, start_from_zero)
    for first in range(0, total, block_frames):
        yield cut_frames(x, frame_size, hop_size, start_from_zero, silent_frames,
                         first, min(block_frames, total - first))


# ---- windows ------------------------------------------------------------------------------

# Cosine-sum coefficients (Harris 1978, "On the use of windows for harmonic analysis with the
# discrete Fourier transform", Proc. IEEE 66(1)), rounded to 5 decimals as the extractor does.
_COSINE_SUMS = {
    "blackmanharris62": (0.44959, 0.49364, 0.05677),
    "blackmanharris70": (0.42323, 0.49755, 0.07922),
    "blackmanharris74": (0.40217, 0.49703, 0.09892, 0.00188),
    "blackmanharris92": (0.35875, 0.48829, 0.14128, 0.01168),
    "hann": (0.5, 0.5),
    "hamming": (0.54, 0.46),
}
WINDOW_TYPES = tuple(sorted(list(_COSINE_SUMS) + ["square", "triangular"]))
_WINDOW_CACHE = {}


def make_window(window_type, size, normalized=True):
    """Symmetric window of ``size`` samples (float32), normalised to ``sum == 2`` by default.

    Types: blackmanharris62/70/74/92, hann, hamming, square, triangular.
    """
    key = (window_type, int(size), bool(normalized))
    w = _WINDOW_CACHE.get(key)
    if w is not None:
        return w
    n = int(size)
    if window_type in _COSINE_SUMS:
        coeffs = _COSINE_SUMS[window_type]
        t = 2.0 * np.pi * np.arange(n) / max(n - 1, 1)
        w = np.zeros(n)
        for i, c in enumerate(coeffs):
            w += (-1) ** i * c * np.cos(i * t)
    elif window_type == "square":
        w = np.ones(n)
    elif window_type == "triangular":
        i = np.arange(n)
        w = 2.0 / n * (n / 2.0 - np.abs(i - (n - 1) / 2.0))
    else:
        raise MirkitError(f"unknown window type {window_type!r} (one of {', '.join(WINDOW_TYPES)})")
    if normalized:
        s = np.abs(w).sum()
        if s > 0:
            w = w * (2.0 / s)
    w = w.astype(np.float32)
    w.setflags(write=False)
    _WINDOW_CACHE[key] = w
    return w


def spectrum(frames, window_type="blackmanharris62", zero_padding=0, window=None):
    """Magnitude spectra ``|rfft(frame * window)|`` of every row, float32, unnormalised.

    ``zero_padding`` zeros are appended (Essentia's zero-phase padding has the same
    magnitude), giving ``(F + zero_padding)//2 + 1`` bins. ``window`` overrides
    ``window_type`` with an explicit array (e.g. an un-normalised one).
    """
    frames = np.asarray(frames, np.float32)
    F = frames.shape[-1]
    w = make_window(window_type, F) if window is None else np.asarray(window, np.float32)
    return np.abs(np.fft.rfft(frames * w, n=F + int(zero_padding), axis=-1)).astype(np.float32, copy=False)


def complex_spectrum(frames, window_type="hann", zero_padding=0, window=None):
    """Complex rfft of the windowed frames (complex64), zero-phase like Essentia's Windowing
    (the frame is rotated by half its length before the FFT, so phases match Essentia's FFT)."""
    frames = np.asarray(frames, np.float32)
    F = frames.shape[-1]
    w = make_window(window_type, F) if window is None else np.asarray(window, np.float32)
    x = frames * w
    n = F + int(zero_padding)
    if zero_padding:
        buf = np.zeros(frames.shape[:-1] + (n,), np.float32)
        h = (F + 1) // 2
        buf[..., :F - h] = x[..., h:]
        buf[..., n - h:] = x[..., :h]
        x = buf
    else:
        x = np.roll(x, -((F + 1) // 2), axis=-1)
    return np.fft.rfft(x, axis=-1)
