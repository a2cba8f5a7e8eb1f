"""Codec bitstream syntax shared by the RTP payload formats and the MP4 code, sans-IO.

One implementation of each codec concept, used by both ``nvr.protocol.payload`` and
``nvr.protocol.mp4``:

- :mod:`.bits`: MSB-first bit reader with Exp-Golomb codes, RBSP unescaping.
- :mod:`.annexb`: NAL unit framing (Annex B start codes, 4-byte length prefixes).
- :mod:`.sps`, :mod:`.h264`, :mod:`.h265`: NAL unit types, parameter-set ids, SPS parsing.
- :mod:`.aac`: AudioSpecificConfig.
- :mod:`.jpeg`: JPEG markers, standard tables, segments, header parsing and picture size.

Malformed input raises :class:`~nvr.protocol.errors.CodecError`, which is both a
``PayloadError`` and an ``Mp4Error``.
"""

from __future__ import annotations

from nvr.protocol.errors import CodecError

__all__ = ["CodecError"]
