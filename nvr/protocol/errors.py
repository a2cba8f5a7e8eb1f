"""The exception hierarchy of the sans-IO protocol layer.

Every parser in ``nvr.protocol`` raises a subclass of :class:`ProtocolError` on malformed input,
with a message naming what was wrong, so shells can map it to an RTSP status, an RTP drop
counter or a log line without ever catching bare exceptions.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Malformed or unsupported protocol input."""


class PayloadError(ProtocolError):
    """An access unit, codec configuration or fmtp value that cannot be used (RTP payloads)."""


class Mp4Error(ProtocolError):
    """Malformed or unsupported ISO BMFF input; the message names the box and the problem."""


class CodecError(PayloadError, Mp4Error):
    """A malformed codec bitstream: parameter set, AudioSpecificConfig, JPEG header, framing.

    The codec parsers in ``nvr.protocol.codecs`` serve both the RTP payload formats and the MP4
    code, so their error is both a :class:`PayloadError` and an :class:`Mp4Error`: whichever of
    the two a caller handles, it handles codec errors as well.
    """
