"""Audio decoding (soundfile / libsndfile) and the file's audio properties.

Formats: whatever the bundled libsndfile reads — WAV/WAVEX/RF64/W64, AIFF, FLAC, OGG (Vorbis
and Opus), MP3 (libsndfile >= 1.1), CAF, AU and the other libsndfile formats. Not readable:
AAC/M4A, WMA, APE, ... (a clear MirkitError names the file and the reason).

:func:`probe` gives Essentia's ``metadata.audio_properties`` fields (extractor.md §3.1):
``codec`` with FFmpeg's codec names (``pcm_s16le``, ``flac``, ``vorbis``, ``mp3``, ...),
``bit_rate`` (PCM: rate*channels*bits; FLAC 0 as FFmpeg; Vorbis: the nominal bitrate of the
identification header; MP3: the first frame's bitrate; otherwise 0), ``lossless``,
``md5_encoded`` (MD5 of the encoded audio payload: the ``data`` chunk of a WAV, the ``SSND``
samples of an AIFF, the frames of a FLAC/MP3, the audio packets of an Ogg stream; for other
containers the MD5 of the whole file), ``length``, ``sample_rate``, ``number_channels``.
"""

import contextlib
import hashlib
import os
import struct
import sys

import numpy as np

from ..errors import MirkitError

LOSSLESS_CODECS = {"alac", "ape", "flac", "shorten", "tak", "truehd", "tta", "wmalossless"}

_PCM_BITS = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32,
             "FLOAT": 32, "DOUBLE": 64, "ULAW": 8, "ALAW": 8}


def _codec_name(fmt, subtype):
    endian = "be" if fmt in ("AIFF", "AU", "CAF") else "le"
    if fmt in ("FLAC",):
        return "flac"
    if fmt == "OGG":
        return {"VORBIS": "vorbis", "OPUS": "opus", "FLAC": "flac", "SPEEX": "speex"}.get(subtype, subtype.lower())
    if fmt == "MP3" or subtype.startswith("MPEG_LAYER"):
        return {"MPEG_LAYER_I": "mp1", "MPEG_LAYER_II": "mp2"}.get(subtype, "mp3")
    table = {"PCM_S8": "pcm_s8", "PCM_U8": "pcm_u8", "PCM_16": f"pcm_s16{endian}",
             "PCM_24": f"pcm_s24{endian}", "PCM_32": f"pcm_s32{endian}",
             "FLOAT": f"pcm_f32{endian}", "DOUBLE": f"pcm_f64{endian}",
             "ULAW": "pcm_mulaw", "ALAW": "pcm_alaw"}
    return table.get(subtype, subtype.lower())


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (C libraries' chatter) for the duration of the block."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 2)
        os.close(devnull)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _open_error(path, exc):
    text = str(exc)
    if "possibly a pipe" in text or "Unspecified internal error" in text:
        text = "Format not recognised"
    if "Format not recognised" in text or "unknown format" in text.lower():
        ext = os.path.splitext(os.fsdecode(path))[1] or "(no extension)"
        return MirkitError(f"cannot decode audio: format not recognised by libsndfile "
                           f"(extension {ext})", display_name(path))
    reason = text.split(":", 1)[-1].strip() if "Error opening" in text else text
    return MirkitError(f"cannot decode audio: {reason}", display_name(path))


def display_name(path):
    """The path as text for messages and records (metadata.id, metadata.tags.file_name):
    always valid UTF-8. A file name that is not valid UTF-8 is decoded with
    'backslashreplace': each undecodable byte becomes ``\\xHH`` (b'caf\\xe9.wav' ->
    'caf\\\\xe9.wav', as bash's $'...' quoting writes it), see extract(1)."""
    try:
        raw = os.fsencode(path)     # str paths from argv/stdin carry the bytes as surrogates
    except UnicodeEncodeError:      # a str that no file name decodes to
        return path.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")


def _check_readable(path):
    shown = display_name(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise MirkitError("no such file", shown) from None
    except OSError as exc:
        raise MirkitError(f"cannot read file: {exc.strerror}", shown) from None
    if os.path.isdir(path):
        raise MirkitError("is a directory, not an audio file", shown)
    if st.st_size == 0:
        raise MirkitError("empty file (0 bytes)", shown)
    if not os.access(path, os.R_OK):
        raise MirkitError("cannot read file: permission denied", shown)


def open_info(path, shown=None):
    """Header information ``{format, subtype, channels, samplerate, frames}`` of a readable
    audio file; MirkitError naming the file otherwise."""
    import soundfile as sf
    shown = shown or display_name(path)
    _check_readable(path)
    try:
        with _quiet_stderr():
            with sf.SoundFile(os.fsencode(path)) as f:
                info = {"format": f.format, "subtype": f.subtype, "channels": f.channels,
                        "samplerate": f.samplerate, "frames": f.frames}
    except sf.LibsndfileError as exc:
        raise _open_error(path, exc) from None
    except (RuntimeError, TypeError, ValueError) as exc:
        raise MirkitError(f"cannot decode audio: {exc}", shown) from None
    if info["samplerate"] <= 0 or info["channels"] <= 0:
        raise MirkitError("invalid sample rate or channel count in the file header", shown)
    return info


DECODE_BLOCK = 1 << 18  # frames per read, here and in stream.decode_blocks: see read_mono


def read_blocks(path, block=DECODE_BLOCK, shown=None):
    """Decode ``path`` with libsndfile, block by block. Yields the file's ``(sample rate,
    channels, frames in the header)`` first, then float32 ``(n, channels)`` blocks, the last
    one shorter than ``block`` (possibly empty); NaN samples become 0, infinities +-1.
    MirkitError naming the file when it cannot be opened or decoded."""
    import soundfile as sf
    shown = shown if shown is not None else display_name(path)
    try:
        with _quiet_stderr():   # libmpg123 prints "Note: ..." lines on stderr
            f = sf.SoundFile(os.fsencode(path))
    except sf.LibsndfileError as exc:
        raise _open_error(path, exc) from None
    with f:
        yield int(f.samplerate), int(f.channels), int(f.frames)
        while True:
            try:
                with _quiet_stderr():
                    chunk = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
                raise MirkitError(f"cannot decode audio: {exc}", shown) from None
            if len(chunk) and not np.all(np.isfinite(chunk)):
                chunk = np.nan_to_num(chunk, nan=0.0, posinf=1.0, neginf=-1.0)
            yield chunk
            if len(chunk) < block:
                return


def read_mono(path, start=0, end=None, block=DECODE_BLOCK):
    """Decode the file block by block into its mono mix (the mean of the channels, float32,
    at the file's own rate), keeping samples ``[start, end)`` only: what a model's front end
    reads, without ever holding the multichannel signal (a 6-minute 48 kHz stereo track:
    66 MB instead of 200 MB at the peak). The same samples as decoding the whole file at
    once and taking ``[start:end].mean(axis=1, dtype=float32)``. Returns ``(mono,
    sample_rate, decoded frames)``; MirkitError naming the file for unreadable or
    undecodable input.

    MP3: libsndfile's decoder returns samples that depend on the read size by one float32
    ulp (on ~20 % of the samples); blocks of the descriptor decoder's size make models and
    descriptors read the very same samples."""
    _check_readable(path)
    shown = display_name(path)
    end = int(1e18) if end is None else int(end)
    start = max(0, int(start))
    blocks = read_blocks(path, block, shown)
    sr, _, frames = next(blocks)
    if sr <= 0:
        blocks.close()
        raise MirkitError("invalid sample rate in the file header", shown)
    out = np.empty(max(0, min(frames, end) - start), dtype=np.float32)
    filled = decoded = 0
    for chunk in blocks:
        a, b = decoded, decoded + len(chunk)
        decoded = b
        lo, hi = max(a, start), min(b, end)
        if hi <= lo:
            continue
        part = chunk[lo - a:hi - a]
        mono = part[:, 0] if part.shape[1] == 1 else part.mean(axis=1, dtype=np.float32)
        if filled + len(mono) > len(out):  # the header's frame count was short
            out = np.concatenate([out[:filled], np.empty(len(mono) + len(out),
                                                         dtype=np.float32)])
        out[filled:filled + len(mono)] = mono
        filled += len(mono)
    return out[:filled], sr, decoded


# ---- encoded payload: md5 and bit rate ------------------------------------------------------

def _md5_range(fh, start, length):
    h = hashlib.md5()
    fh.seek(start)
    remaining = length
    while remaining > 0:
        chunk = fh.read(min(1 << 20, remaining))
        if not chunk:
            break
        h.update(chunk)
        remaining -= len(chunk)
    return h.hexdigest()


def _riff_data(fh, size):
    """(offset, length) of the WAV data chunk, or None."""
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
        return None
    pos = 12
    ds64_size = None
    while pos + 8 <= size:
        fh.seek(pos)
        cid, clen = struct.unpack("<4sI", fh.read(8))
        if cid == b"ds64":
            fh.seek(pos + 8)
            vals = struct.unpack("<QQQ", fh.read(24))
            ds64_size = vals[1]
        if cid == b"data":
            if clen == 0xFFFFFFFF and ds64_size is not None:
                clen = ds64_size
            return pos + 8, min(clen, size - pos - 8)
        pos += 8 + clen + (clen & 1)
    return None


def _aiff_data(fh, size):
    fh.seek(0)
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"FORM" or head[8:12] not in (b"AIFF", b"AIFC"):
        return None
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        cid, clen = struct.unpack(">4sI", fh.read(8))
        if cid == b"SSND":
            offset = struct.unpack(">I", fh.read(4))[0]
            return pos + 16 + offset, max(0, min(clen - 8 - offset, size - pos - 16 - offset))
        pos += 8 + clen + (clen & 1)
    return None


def _id3v2_size(fh, at=0):
    fh.seek(at)
    head = fh.read(10)
    if len(head) == 10 and head[:3] == b"ID3":
        n = (head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9]
        footer = 10 if head[5] & 0x10 else 0
        return 10 + n + footer
    return 0


def _id3v1_size(fh, size):
    if size >= 128:
        fh.seek(size - 128)
        if fh.read(3) == b"TAG":
            return 128
    return 0


def _flac_audio(fh, size):
    start = _id3v2_size(fh)
    fh.seek(start)
    if fh.read(4) != b"fLaC":
        return None
    pos = start + 4
    while pos + 4 <= size:
        fh.seek(pos)
        hdr = fh.read(4)
        last = hdr[0] & 0x80
        blen = int.from_bytes(hdr[1:4], "big")
        pos += 4 + blen
        if last:
            break
    return pos, size - pos - _id3v1_size(fh, size)


def _ogg_packets(fh, size, max_packets=None):
    """Yield the packets of the first logical stream of an Ogg file."""
    fh.seek(0)
    serial = None
    packet = bytearray()
    count = 0
    while True:
        hdr = fh.read(27)
        if len(hdr) < 27 or hdr[:4] != b"OggS":
            break
        this_serial = struct.unpack("<I", hdr[14:18])[0]
        nseg = hdr[26]
        lacing = fh.read(nseg)
        body = fh.read(sum(lacing))
        if serial is None:
            serial = this_serial
        if this_serial != serial:
            continue
        pos = 0
        for lace in lacing:
            packet += body[pos:pos + lace]
            pos += lace
            if lace < 255:
                yield bytes(packet)
                packet = bytearray()
                count += 1
                if max_packets and count >= max_packets:
                    return
    if packet:
        yield bytes(packet)


_MP3_BITRATES = {
    (1, 1): [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    (1, 2): [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    (1, 3): [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
    (2, 1): [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    (2, 2): [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
}


def _mp3_first_frame(fh, size):
    start = _id3v2_size(fh)
    fh.seek(start)
    buf = fh.read(64 * 1024)
    for i in range(len(buf) - 4):
        if buf[i] == 0xFF and (buf[i + 1] & 0xE0) == 0xE0:
            b1, b2 = buf[i + 1], buf[i + 2]
            version = (b1 >> 3) & 3      # 3 = MPEG1, 2 = MPEG2, 0 = MPEG2.5
            layer = 4 - ((b1 >> 1) & 3)
            idx = b2 >> 4
            if version == 1 or layer == 4 or idx in (0, 15) or (b2 >> 2) & 3 == 3:
                continue
            v = 1 if version == 3 else 2
            table = _MP3_BITRATES[(v, layer if v == 1 else (1 if layer == 1 else 2))]
            bit_rate = table[idx] * 1000
            # a VBR file announces its frame and byte counts in a Xing/Info frame: FFmpeg
            # then reports bytes*8/duration
            rates = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}
            sr_idx = (b2 >> 2) & 3
            head = buf[i:i + 200]
            for tag in (b"Xing", b"Info"):
                j = head.find(tag)
                if j > 0 and len(head) >= j + 16:
                    flags = struct.unpack(">I", head[j + 4:j + 8])[0]
                    if flags & 3 == 3:
                        frames = struct.unpack(">I", head[j + 8:j + 12])[0]
                        nbytes = struct.unpack(">I", head[j + 12:j + 16])[0]
                        spf = 1152 if (layer != 1 and (v == 1 or layer == 2)) else (576 if layer == 3 else 384)
                        if frames:
                            bit_rate = int(nbytes * 8 / (frames * spf / rates[version][sr_idx]))
                    break
            return start + i, bit_rate
    return None


def probe(path, info):
    """Audio properties of the encoded file (see module docstring). ``info`` comes from
    :func:`open_info`."""
    fmt, subtype = info["format"], info["subtype"]
    codec = _codec_name(fmt, subtype)
    sr, ch = info["samplerate"], info["channels"]
    bit_rate = 0
    md5 = None
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        if codec.startswith("pcm_"):
            bits = _PCM_BITS.get(subtype, 16)
            bit_rate = sr * ch * bits
            span = _riff_data(fh, size) or _aiff_data(fh, size)
            if span:
                md5 = _md5_range(fh, *span)
        elif codec == "flac" and fmt == "FLAC":
            span = _flac_audio(fh, size)
            if span:
                md5 = _md5_range(fh, *span)
        elif fmt == "OGG":
            skip = {"vorbis": 3, "opus": 2}.get(codec, 0)
            h = hashlib.md5()
            for i, pkt in enumerate(_ogg_packets(fh, size)):
                if i == 0 and codec == "vorbis" and pkt[:7] == b"\x01vorbis" and len(pkt) >= 24:
                    bit_rate = max(0, struct.unpack("<i", pkt[20:24])[0])
                if i >= skip:
                    h.update(pkt)
            md5 = h.hexdigest()
        elif codec in ("mp3", "mp1", "mp2"):
            first = _mp3_first_frame(fh, size)
            if first:
                bit_rate = first[1]
                md5 = _md5_range(fh, first[0], size - first[0] - _id3v1_size(fh, size))
        if md5 is None:
            md5 = _md5_range(fh, 0, size)
    lossless = codec in LOSSLESS_CODECS or codec.startswith("pcm_")
    return {
        "bit_rate": float(bit_rate),
        "codec": codec,
        "length": float(info["frames"]) / sr if sr else 0.0,
        "lossless": float(bool(lossless)),
        "md5_encoded": md5,
        "number_channels": float(ch),
        "sample_rate": float(sr),
    }
