"""The one exception type of the MP4 package (defined with the rest of the hierarchy)."""

from __future__ import annotations

from nvr.protocol.errors import Mp4Error

__all__ = ["Mp4Error"]
