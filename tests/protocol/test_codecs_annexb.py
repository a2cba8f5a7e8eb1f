"""NAL unit framing: Annex B start codes and the 4-byte length-prefixed storage form."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.codecs.annexb import (
    annexb_to_length_prefixed,
    length_prefixed_to_annexb,
    length_prefixed_to_nals,
    nals_to_annexb,
    nals_to_length_prefixed,
    split_annexb,
)
from nvr.protocol.errors import CodecError

nal_units = st.lists(
    st.binary(min_size=1, max_size=300).map(lambda b: bytes((b[0] & 0x7F or 1,)) + b[1:]),
    max_size=8,
)
# Emulation prevention keeps start codes (and trailing zeros) out of real NAL units.
clean_nal_units = nal_units.map(lambda nals: [n.replace(b"\x00", b"\x01") for n in nals])


@given(nal_units, st.sampled_from([1, 2, 4]))
def test_length_prefixed_round_trip(nals: list[bytes], length_size: int) -> None:
    nals = [nal[: (1 << 8 * length_size) - 1] for nal in nals]
    data = nals_to_length_prefixed(nals, length_size)
    assert len(data) == sum(length_size + len(nal) for nal in nals)
    assert length_prefixed_to_nals(data, length_size) == nals


@given(clean_nal_units)
def test_annexb_round_trip(nals: list[bytes]) -> None:
    assert split_annexb(nals_to_annexb(nals)) == nals
    assert split_annexb(b"\x00\x00\x01" + b"\x00\x00\x01".join(nals)) == nals


@given(clean_nal_units, st.integers(0, 3))
def test_conversions_between_the_two_forms(nals: list[bytes], trailing_zeros: int) -> None:
    stored = nals_to_length_prefixed(nals)
    assert length_prefixed_to_annexb(stored) == nals_to_annexb(nals)
    assert annexb_to_length_prefixed(nals_to_annexb(nals) + bytes(trailing_zeros)) == stored


def test_bad_framing_is_a_codec_error() -> None:
    for bad in (b"\x00\x00\x00", b"\x00\x00\x00\x05abc", b"\x00\x00\x00\x00"):
        with pytest.raises(CodecError):
            length_prefixed_to_nals(bad)
    with pytest.raises(CodecError, match="no start code"):
        split_annexb(b"no start code")
    assert split_annexb(b"") == [] and split_annexb(b"\x00\x00") == []
