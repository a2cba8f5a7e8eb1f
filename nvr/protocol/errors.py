"""The exception hierarchy of the sans-IO protocol layer.

Every parser in ``nvr.protocol`` raises a subclass of :class:`ProtocolError` on malformed input,
with a message naming what was wrong, so shells can map it to an RTSP status, an RTP drop
counter or a log line without ever catching bare exceptions.
"""

from __future__ import annotations


class ProtocolError(ValueError):
    """Malformed or unsupported protocol input."""
