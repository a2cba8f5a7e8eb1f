"""Drive the payload fuzz entry points of tests/fuzz with hypothesis: raw bytes, and valid
packet streams with bytes flipped, inserted and cut (so the fuzzers reach deep states)."""

from __future__ import annotations

import importlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nvr.protocol.payload import make_depacketizer, make_packetizer
from nvr.protocol.payload.jpeg_headers import STANDARD_DHT, dqt_segment, sof_segment, sos_segment
from nvr.protocol.payload.jpeg_headers import quant_tables_for_q as q_tables
from tests.fuzz.harness import drive, encode, mutated

FORMATS = ("h264", "h265", "jpeg", "aac", "g711", "onvif_metadata")
FUZZERS = {fmt: importlib.import_module(f"tests.fuzz.fuzz_payload_{fmt}") for fmt in FORMATS}


def _jpeg() -> bytes:
    t = q_tables(60)
    return b"".join(
        [
            b"\xff\xd8",
            dqt_segment([(0, 0, t[:64]), (1, 0, t[64:])]),
            sof_segment(0xC0, 1000, 30, [(1, 0x22, 0), (2, 0x11, 1), (3, 0x11, 1)]),
            STANDARD_DHT,
            b"\xff\xdd\x00\x04\x00\x02",
            sos_segment([1, 2, 3]),
            bytes(range(1, 255)) * 4,
            b"\xff\xd9",
        ]
    )


def _units(fmt: str) -> tuple[str, list[bytes]]:
    """An encoding name and two valid units of each format."""
    nal = lambda *n: b"".join(len(x).to_bytes(4, "big") + x for x in n)  # noqa: E731
    units = {
        "h264": ("H264", [nal(b"\x67\x42\x00\x1e\xab", b"\x68\xce", b"\x65\x88" + bytes(500)),
                          nal(b"\x41\x9a" + bytes(90))]),
        "h265": ("H265", [nal(b"\x40\x01\x0c", b"\x42\x01\x01", b"\x44\x01\xc1",
                              b"\x26\x01\xaf" + bytes(500)), nal(b"\x02\x01\x80" + bytes(90))]),
        "jpeg": ("JPEG", [_jpeg(), _jpeg()]),
        "aac": ("MPEG4-GENERIC", [bytes(range(200)), bytes(700)]),
        "g711": ("PCMU", [bytes(160), bytes(160)]),
        "onvif_metadata": ("VND.ONVIF.METADATA",
                           [b"<?xml version='1.0'?><tt:MetadataStream>" + b"x" * 300 +
                            b"</tt:MetadataStream>"] * 2),
    }[fmt]  # fmt: skip
    return units


AAC_HEAD = bytes((13, 3 + 5 * 3, 0, 0))  # the fuzzer's layout bytes for AAC-hbr
AAC_FMTP = {"config": "1190", "mode": "AAC-hbr", "sizelength": "13", "indexlength": "3"}


def _seed(fmt: str) -> bytes:
    """A valid stream, as fuzz input."""
    encoding, units = _units(fmt)
    pk = make_packetizer(encoding, 90000, AAC_FMTP, mtu=200)
    return encode(pk.packetize(u) for u in units)


SEEDS = {fmt: _seed(fmt) for fmt in FORMATS}
FUZZ_INPUTS = {fmt: AAC_HEAD + seed if fmt == "aac" else seed for fmt, seed in SEEDS.items()}
_SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("fmt", FORMATS)
def test_seed_streams_decode(fmt: str) -> None:
    """The seeds are good streams: the fuzz driver gets every unit out of them."""
    encoding, units = _units(fmt)
    out = drive(lambda: make_depacketizer(encoding, 90000, AAC_FMTP), SEEDS[fmt])
    assert len(out) == len(units)
    FUZZERS[fmt].fuzz_one_input(FUZZ_INPUTS[fmt])


@pytest.mark.parametrize("fmt", FORMATS)
@_SETTINGS
@given(data=st.binary(max_size=3000))
def test_fuzz_raw_bytes(fmt: str, data: bytes) -> None:
    FUZZERS[fmt].fuzz_one_input(data)


@pytest.mark.parametrize("fmt", FORMATS)
@_SETTINGS
@given(data=st.data())
def test_fuzz_mutated_streams(fmt: str, data: st.DataObject) -> None:
    FUZZERS[fmt].fuzz_one_input(data.draw(mutated([FUZZ_INPUTS[fmt]])))
