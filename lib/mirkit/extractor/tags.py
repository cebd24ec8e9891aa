"""A small tag reader: Vorbis comments (FLAC, Ogg Vorbis/Opus), ID3v2.3/2.4 text frames
(MP3, and an ``id3 `` chunk in WAV/AIFF), RIFF INFO (WAV), libsndfile's strings otherwise.

Keys are normalised to TagLib's property names (``ARTIST``, ``TRACKNUMBER``, ...), kept only
if they are in :data:`TAG_WHITELIST` (the common TagLib/MusicBrainz property keys), and stored
as ``metadata.tags.<key lowercased, '.' -> '_'>`` = list of strings (extractor.md §4.3).
"""

import struct

TAG_WHITELIST = frozenset("""
TITLE ALBUM ARTIST ALBUMARTIST SUBTITLE TRACKNUMBER TRACKTOTAL DISCNUMBER DISCTOTAL DATE
ORIGINALDATE ORIGINALYEAR YEAR GENRE COMMENT DESCRIPTION TITLESORT ALBUMSORT ARTISTSORT
ALBUMARTISTSORT COMPOSERSORT COMPOSER LYRICIST CONDUCTOR REMIXER ARRANGER ENGINEER PRODUCER
DJMIXER MIXER PERFORMER WRITER ISRC ASIN BPM INITIALKEY KEY COPYRIGHT ENCODEDBY ENCODING
MOOD MEDIA LABEL CATALOGNUMBER BARCODE RELEASECOUNTRY RELEASESTATUS RELEASETYPE SCRIPT LANGUAGE
LICENSE WORK MOVEMENTNAME GROUPING COMPILATION LYRICS WEBSITE ORGANIZATION OPUS
MUSICBRAINZ_TRACKID MUSICBRAINZ_ALBUMID MUSICBRAINZ_RELEASEGROUPID MUSICBRAINZ_RELEASETRACKID
MUSICBRAINZ_WORKID MUSICBRAINZ_ARTISTID MUSICBRAINZ_ALBUMARTISTID MUSICBRAINZ_TRMID
MUSICBRAINZ_DISCID MUSICBRAINZ_ALBUMSTATUS MUSICBRAINZ_ALBUMTYPE MUSICBRAINZ_RECORDINGID
MUSICIP_PUID ACOUSTID_ID ACOUSTID_FINGERPRINT REPLAYGAIN_TRACK_GAIN REPLAYGAIN_TRACK_PEAK
REPLAYGAIN_ALBUM_GAIN REPLAYGAIN_ALBUM_PEAK TEMPO TOTALTRACKS TOTALDISCS
""".split())

# ID3v2 frame id -> property key (TagLib's mapping for the common text frames)
_ID3_FRAMES = {
    "TIT2": "TITLE", "TALB": "ALBUM", "TPE1": "ARTIST", "TPE2": "ALBUMARTIST",
    "TIT3": "SUBTITLE", "TRCK": "TRACKNUMBER", "TPOS": "DISCNUMBER", "TDRC": "DATE",
    "TYER": "DATE", "TDOR": "ORIGINALDATE", "TCON": "GENRE", "TSOT": "TITLESORT",
    "TSOA": "ALBUMSORT", "TSOP": "ARTISTSORT", "TSO2": "ALBUMARTISTSORT", "TCOM": "COMPOSER",
    "TEXT": "LYRICIST", "TPE3": "CONDUCTOR", "TPE4": "REMIXER", "TSRC": "ISRC", "TBPM": "BPM",
    "TKEY": "INITIALKEY", "TCOP": "COPYRIGHT", "TENC": "ENCODEDBY", "TMOO": "MOOD",
    "TMED": "MEDIA", "TPUB": "LABEL", "TLAN": "LANGUAGE", "TIT1": "GROUPING",
    "TCMP": "COMPILATION", "TSSE": "ENCODING",
}
_ID3_TXXX = {"MUSICBRAINZ ALBUM ID": "MUSICBRAINZ_ALBUMID",
             "MUSICBRAINZ ARTIST ID": "MUSICBRAINZ_ARTISTID",
             "MUSICBRAINZ ALBUM ARTIST ID": "MUSICBRAINZ_ALBUMARTISTID",
             "MUSICBRAINZ RELEASE GROUP ID": "MUSICBRAINZ_RELEASEGROUPID",
             "MUSICBRAINZ RELEASE TRACK ID": "MUSICBRAINZ_RELEASETRACKID",
             "MUSICBRAINZ WORK ID": "MUSICBRAINZ_WORKID",
             "ACOUSTID ID": "ACOUSTID_ID", "CATALOGNUMBER": "CATALOGNUMBER",
             "BARCODE": "BARCODE", "ASIN": "ASIN"}
_RIFF_INFO = {b"INAM": "TITLE", b"IART": "ARTIST", b"IPRD": "ALBUM", b"ICMT": "COMMENT",
              b"ICRD": "DATE", b"IGNR": "GENRE", b"ICOP": "COPYRIGHT", b"ITRK": "TRACKNUMBER",
              b"IPRT": "TRACKNUMBER", b"ISFT": "ENCODING"}
_SF_STRINGS = {"title": "TITLE", "artist": "ARTIST", "album": "ALBUM", "comment": "COMMENT",
               "date": "DATE", "genre": "GENRE", "copyright": "COPYRIGHT",
               "tracknumber": "TRACKNUMBER", "license": "LICENSE"}


def _add(tags, key, value):
    key = key.strip().upper()
    if key == "UFID:HTTP://MUSICBRAINZ.ORG":
        key = "MUSICBRAINZ_TRACKID"
    if key not in TAG_WHITELIST:
        return
    value = value.strip("\x00")
    if value == "":
        return
    tags.setdefault(key.replace(".", "_").lower(), []).append(value)


def _vorbis_comments(data, tags):
    try:
        pos = 0
        vlen = struct.unpack_from("<I", data, pos)[0]
        pos += 4 + vlen
        count = struct.unpack_from("<I", data, pos)[0]
        pos += 4
        for _ in range(count):
            ln = struct.unpack_from("<I", data, pos)[0]
            pos += 4
            text = data[pos:pos + ln].decode("utf-8", "replace")
            pos += ln
            if "=" in text:
                k, v = text.split("=", 1)
                _add(tags, k, v)
    except struct.error:
        pass


def _flac_tags(fh, tags):
    fh.seek(0)
    head = fh.read(10)
    start = 0
    if head[:3] == b"ID3":
        start = 10 + ((head[6] << 21) | (head[7] << 14) | (head[8] << 7) | head[9])
    fh.seek(start)
    if fh.read(4) != b"fLaC":
        return
    while True:
        hdr = fh.read(4)
        if len(hdr) < 4:
            return
        btype, blen = hdr[0] & 0x7F, int.from_bytes(hdr[1:4], "big")
        data = fh.read(blen)
        if btype == 4:
            _vorbis_comments(data, tags)
        if hdr[0] & 0x80:
            return


def _ogg_tags(path, tags):
    from .audio import _ogg_packets
    with open(path, "rb") as fh:
        for i, pkt in enumerate(_ogg_packets(fh, 0, max_packets=2)):
            if i == 1:
                if pkt[:7] == b"\x03vorbis":
                    _vorbis_comments(pkt[7:], tags)
                elif pkt[:8] == b"OpusTags":
                    _vorbis_comments(pkt[8:], tags)


def _decode_id3_text(enc, raw):
    codecs = {0: "latin-1", 1: "utf-16", 2: "utf-16-be", 3: "utf-8"}
    text = raw.decode(codecs.get(enc, "latin-1"), "replace")
    return [t for t in text.split("\x00") if t]


def _id3v2(data, tags):
    if len(data) < 10 or data[:3] != b"ID3":
        return
    major = data[3]
    size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
    pos, end = 10, min(len(data), 10 + size)
    if data[5] & 0x40:   # extended header
        ext = struct.unpack_from(">I", data, pos)[0]
        pos += ext if major == 4 else ext + 4
    while pos + 10 <= end:
        fid = data[pos:pos + 4]
        if not fid.strip(b"\x00"):
            break
        if major == 4:
            b = data[pos + 4:pos + 8]
            flen = (b[0] << 21) | (b[1] << 14) | (b[2] << 7) | b[3]
        else:
            flen = struct.unpack_from(">I", data, pos + 4)[0]
        body = data[pos + 10:pos + 10 + flen]
        pos += 10 + flen
        fid = fid.decode("latin-1")
        if not body:
            continue
        if fid == "TXXX":
            parts = _decode_id3_text(body[0], body[1:])
            if len(parts) >= 2:
                key = _ID3_TXXX.get(parts[0].upper(), parts[0])
                for v in parts[1:]:
                    _add(tags, key, v)
        elif fid == "UFID":
            owner, _, ident = body.partition(b"\x00")
            if owner == b"http://musicbrainz.org":
                _add(tags, "MUSICBRAINZ_TRACKID", ident.decode("latin-1"))
        elif fid == "COMM" and len(body) > 4:
            parts = _decode_id3_text(body[0], body[4:])
            if parts:
                _add(tags, "COMMENT", parts[-1])
        elif fid in _ID3_FRAMES:
            for v in _decode_id3_text(body[0], body[1:]):
                _add(tags, _ID3_FRAMES[fid], v)


def _riff_tags(fh, size, tags):
    fh.seek(0)
    head = fh.read(12)
    if head[:4] not in (b"RIFF", b"FORM"):
        return
    big = head[:4] == b"FORM"
    pos = 12
    while pos + 8 <= size:
        fh.seek(pos)
        cid = fh.read(4)
        clen = struct.unpack(">I" if big else "<I", fh.read(4))[0]
        if cid in (b"id3 ", b"ID3 "):
            _id3v2(fh.read(min(clen, 1 << 24)), tags)
        elif cid == b"LIST" and not big:
            body = fh.read(min(clen, 1 << 20))
            if body[:4] == b"INFO":
                p = 4
                while p + 8 <= len(body):
                    sid = body[p:p + 4]
                    slen = struct.unpack_from("<I", body, p + 4)[0]
                    val = body[p + 8:p + 8 + slen].split(b"\x00")[0]
                    if sid in _RIFF_INFO:
                        _add(tags, _RIFF_INFO[sid], val.decode("utf-8", "replace"))
                    p += 8 + slen + (slen & 1)
        pos += 8 + clen + (clen & 1)


def read_tags(path, fmt=None):
    """``{tag: [values]}`` of the file (lowercased keys); never raises on odd tags."""
    import os
    tags = {}
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            head = fh.read(16)
            if head[:4] == b"fLaC" or (fmt == "FLAC"):
                _flac_tags(fh, tags)
            elif head[:4] == b"OggS":
                _ogg_tags(path, tags)
            elif head[:4] in (b"RIFF", b"FORM"):
                _riff_tags(fh, size, tags)
            elif head[:3] == b"ID3":
                fh.seek(0)
                hdr = fh.read(10)
                n = (hdr[6] << 21) | (hdr[7] << 14) | (hdr[8] << 7) | hdr[9]
                fh.seek(0)
                _id3v2(fh.read(10 + n), tags)
    except (OSError, ValueError, IndexError, struct.error):
        pass
    if not tags:
        try:
            import soundfile as sf
            with sf.SoundFile(path) as f:
                for k, v in f.copy_metadata().items():
                    if k in _SF_STRINGS:
                        _add(tags, _SF_STRINGS[k], v)
        except Exception:  # noqa: BLE001 - tags are best effort
            pass
    return tags
