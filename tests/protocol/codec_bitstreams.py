"""Test-side encoders for hand-made codec headers: bits, Exp-Golomb, emulation prevention, and
H.264/H.265 SPS and AudioSpecificConfig builders (shared by the codec and MP4 tests)."""

from __future__ import annotations


class BitWriter:
    """MSB-first bit writer; methods chain."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def u(self, n: int, value: int) -> BitWriter:
        self.bits += [(value >> (n - 1 - i)) & 1 for i in range(n)]
        return self

    def ue(self, value: int) -> BitWriter:
        code = value + 1
        n = code.bit_length()
        return self.u(n - 1, 0).u(n, code)

    def se(self, value: int) -> BitWriter:
        return self.ue(2 * value - 1 if value > 0 else -2 * value)

    def bytes(self) -> bytes:
        """The bits padded with zeros to whole bytes."""
        return _pack(self.bits)

    def rbsp(self) -> bytes:
        """The bits with rbsp_trailing_bits (a stop bit, then zeros)."""
        return _pack([*self.bits, 1])


def _pack(bits: list[int]) -> bytes:
    bits = bits + [0] * (-len(bits) % 8)
    return bytes(int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits), 8))


def escape(rbsp: bytes) -> bytes:
    """Insert emulation-prevention bytes (the inverse of ``unescape_rbsp``)."""
    out = bytearray()
    zeros = 0
    for b in rbsp:
        if zeros >= 2 and b <= 3:
            out.append(3)
            zeros = 0
        out.append(b)
        zeros = zeros + 1 if b == 0 else 0
    return bytes(out)


def h264_sps(
    *,
    profile: int = 66,
    width_mbs: int = 120,
    height_units: int = 68,
    frame_mbs_only: bool = True,
    crop: tuple[int, int, int, int] | None = None,
    scaling: bool = False,
    chroma: int = 1,
    poc_type: int = 0,
    sps_id: int = 0,
) -> bytes:
    """An H.264 SPS NAL unit (constraint flags 0xC0, level 40)."""
    w = BitWriter().u(8, profile).u(8, 0xC0).u(8, 40).ue(sps_id)
    if profile in (100, 110, 122, 244):
        w.ue(chroma)
        if chroma == 3:
            w.u(1, 0)
        w.ue(0).ue(0).u(1, 0).u(1, int(scaling))
        if scaling:
            for i in range(8):
                present = i in (0, 6)
                w.u(1, int(present))
                if present:
                    for j in range(16 if i < 6 else 64):
                        w.se(1 if j == 0 else 0)
    w.ue(0).ue(poc_type)
    if poc_type == 0:
        w.ue(2)
    elif poc_type == 1:
        w.u(1, 0).se(-1).se(2).ue(3).se(1).se(-1).se(0)
    w.ue(1).u(1, 0).ue(width_mbs - 1).ue(height_units - 1).u(1, int(frame_mbs_only))
    if not frame_mbs_only:
        w.u(1, 0)
    w.u(1, 1).u(1, int(crop is not None))
    if crop:
        for c in crop:
            w.ue(c)
    w.u(1, 0)  # vui_parameters_present_flag
    return b"\x67" + escape(w.rbsp())


def h265_sps(
    sub_layers: int,
    crop: tuple[int, int, int, int],
    chroma: int = 1,
    *,
    size: tuple[int, int] = (3840, 2176),
    sps_id: int = 0,
) -> bytes:
    """An H.265 SPS NAL unit: Main 10 (profile 2), high tier, level 153, 10-bit."""
    w = BitWriter().u(4, 0).u(3, sub_layers - 1).u(1, 1)
    w.u(2, 0).u(1, 1).u(5, 2).u(32, 0x20000000).u(48, 0x900000000000).u(8, 153)
    for _ in range(sub_layers - 1):
        w.u(1, 1).u(1, 1)
    if sub_layers > 1:
        w.u(2 * (9 - sub_layers), 0)
    for _ in range(sub_layers - 1):
        w.u(88, 0).u(8, 120)
    w.ue(sps_id).ue(chroma)
    if chroma == 3:
        w.u(1, 0)
    w.ue(size[0]).ue(size[1]).u(1, 1)
    for c in crop:
        w.ue(c)
    w.ue(2).ue(2)
    return b"\x42\x01" + escape(w.rbsp())


def asc(aot: int, rate_index: int, channels: int, explicit_rate: int = 0) -> BitWriter:
    """The start of an AudioSpecificConfig; chain more fields, then ``.bytes()``."""
    w = BitWriter()
    if aot >= 31:
        w.u(5, 31).u(6, aot - 32)
    else:
        w.u(5, aot)
    w.u(4, rate_index)
    if rate_index == 15:
        w.u(24, explicit_rate)
    return w.u(4, channels)
