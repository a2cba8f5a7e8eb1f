"""The RFC 2435 quantization tables for Q 1-99, and the JPEG syntax RTP/JPEG uses.

The JPEG syntax itself (markers, standard tables, segments, header parser) lives in
:mod:`nvr.protocol.codecs.jpeg`; every name of it is re-exported here for existing users.
"""

from __future__ import annotations

from functools import lru_cache

from nvr.protocol.codecs.jpeg import *  # noqa: F403 - the module's former contents
from nvr.protocol.codecs.jpeg import CHROMA_QUANT, LUMA_QUANT


@lru_cache(maxsize=128)
def quant_tables_for_q(q: int) -> bytes:
    """RFC 2435 Appendix A: luma and chroma tables (zigzag) scaled for quality ``q`` (1-99)."""
    q = min(max(q, 1), 99)
    scale = 5000 // q if q < 50 else 200 - 2 * q
    return bytes(min(max((v * scale + 50) // 100, 1), 255) for v in (*LUMA_QUANT, *CHROMA_QUANT))
