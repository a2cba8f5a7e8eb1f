"""The one exception type of the MP4 package."""

from __future__ import annotations

from nvr.protocol.errors import ProtocolError


class Mp4Error(ProtocolError):
    """Malformed or unsupported ISO BMFF input; the message names the box and the problem."""
