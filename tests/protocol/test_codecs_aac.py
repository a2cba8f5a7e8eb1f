"""AudioSpecificConfig parsing: real configs, every signalling variant, and a round-trip
property over hand-built configs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvr.protocol.codecs.aac import SAMPLE_RATES, AacConfig, parse_audio_specific_config
from nvr.protocol.errors import CodecError
from tests.protocol.codec_bitstreams import asc


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ("1190", (2, 48000, 2, 1024, None)),
        ("1210", (2, 44100, 2, 1024, None)),
        ("1408", (2, 16000, 1, 1024, None)),
        ("158856e500", (2, 8000, 1, 1024, None)),  # with a sync extension after it
        ("1194", (2, 48000, 2, 960, None)),  # frameLengthFlag
        ("2b920800", (2, 22050, 2, 1024, 44100)),  # HE-AAC, explicit SBR
        ("f94640", (42, 48000, 2, 1024, None)),  # object type escape (USAC)
        ("17805dc008", (2, 48000, 1, 1024, None)),  # explicit 24-bit sample rate
        (asc(2, 15, 1, 12345).bytes().hex(), (2, 12345, 1, 1024, None)),
        (asc(42, 3, 6).bytes().hex(), (42, 48000, 6, 1024, None)),
        (asc(5, 6, 2).u(4, 3).u(5, 2).bytes().hex(), (2, 24000, 2, 1024, 48000)),
        (
            asc(29, 15, 1, 24000).u(4, 15).u(24, 48000).u(5, 2).bytes().hex(),
            (2, 24000, 1, 1024, 48000),  # HE-AAC v2 (PS), explicit rates
        ),
        (asc(5, 8, 1).u(4, 5).u(5, 22).u(4, 2).u(1, 1).bytes().hex(), (22, 16000, 1, 960, 32000)),
        (asc(23, 3, 1).u(1, 0).bytes().hex(), (23, 48000, 1, 512, None)),  # AAC-LD
        (asc(23, 3, 1).u(1, 1).bytes().hex(), (23, 48000, 1, 480, None)),
    ],
)
def test_audio_specific_config(config: str, expected: tuple) -> None:
    cfg = parse_audio_specific_config(bytes.fromhex(config))
    assert (
        cfg.object_type,
        cfg.sample_rate,
        cfg.channels,
        cfg.frame_length,
        cfg.extension_sample_rate,
    ) == expected
    assert cfg.output_rate == (expected[4] or expected[1])
    assert cfg.raw.hex() == config


def test_frame_duration_in_clock_units() -> None:
    assert parse_audio_specific_config(bytes.fromhex("1190")).frame_duration(48000) == 1024
    # HE-AAC: 1024 core samples at 22.05 kHz last 2048 samples at the 44.1 kHz output rate.
    assert parse_audio_specific_config(bytes.fromhex("2b920800")).frame_duration(44100) == 2048


@pytest.mark.parametrize(
    "config",
    [
        b"",
        b"\x12",  # truncated before the channel configuration
        b"\x17\x88",  # explicit rate cut short
        asc(2, 15, 1, 0).bytes(),  # explicit rate 0
        asc(5, 3, 2).u(4, 15).u(24, 0).u(5, 2).bytes(),  # explicit SBR rate 0
        asc(2, 13, 2).bytes(),  # reserved samplingFrequencyIndex
    ],
)
def test_bad_config_is_refused(config: bytes) -> None:
    with pytest.raises(CodecError, match="AudioSpecificConfig"):
        parse_audio_specific_config(config)


_GA = [1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 23]
rates = st.integers(0, 12).map(lambda i: (i, SAMPLE_RATES[i])) | st.integers(1, (1 << 24) - 1).map(
    lambda r: (15, r)
)


@given(
    aot=st.sampled_from([*_GA, 8, 42]),
    core=rates,
    channels=st.integers(0, 15),
    sbr=st.none() | st.tuples(st.sampled_from([5, 29]), rates),
    short=st.booleans(),
)
def test_round_trip_of_built_configs(
    aot: int,
    core: tuple[int, int],
    channels: int,
    sbr: tuple[int, tuple[int, int]] | None,
    short: bool,
) -> None:
    if sbr is None:
        w = asc(aot, core[0], channels, core[1])
    else:
        w = asc(sbr[0], core[0], channels, core[1]).u(4, sbr[1][0])
        if sbr[1][0] == 15:
            w.u(24, sbr[1][1])
        w.u(5, aot) if aot < 31 else w.u(5, 31).u(6, aot - 32)
    if aot in _GA:
        w.u(1, int(short))
    cfg = parse_audio_specific_config(w.bytes())
    frame_length = (480 if short else 512) if aot == 23 else (960 if short else 1024)
    assert cfg == AacConfig(
        aot,
        core[1],
        channels,
        frame_length if aot in _GA else 1024,
        None if sbr is None else sbr[1][1],
        w.bytes(),
    )
