"""Fuzz entry point for the MP4 reader: any input may be rejected, but only with ProtocolError.

Run with atheris when installed: ``python tests/fuzz/fuzz_mp4.py [corpus_dir] [-atheris_args]``;
without it the same command replays the files given as arguments (see ``harness.py``).
"""

from __future__ import annotations

from nvr.protocol.mp4 import (
    AvcDecoderConfig,
    EsDescriptor,
    HevcDecoderConfig,
    iter_fragments,
    iter_samples,
    jpeg_dimensions,
    parse_audio_specific_config,
    parse_mfra,
    parse_moof,
    parse_moov,
    parse_sample_entry,
    read_init,
    read_mfra,
    walk,
)
from nvr.protocol.mp4 import avc as _avc
from nvr.protocol.mp4 import hevc as _hevc

try:
    from tests.fuzz.harness import guard, main
except ImportError:  # run as a script
    from harness import guard, main  # type: ignore[no-redef]

_PARSERS = (
    AvcDecoderConfig.parse,
    HevcDecoderConfig.parse,
    EsDescriptor.parse,
    parse_audio_specific_config,
    _avc.parse_sps,
    _hevc.parse_sps,
    jpeg_dimensions,
    parse_mfra,
    parse_moov,
)


def _whole_file(data: bytes) -> None:
    for _ in walk(data):
        pass
    # The same walk through ranged reads, as for a large file on disk.
    for _ in walk(lambda off, n: data[off : off + n], size=len(data)):
        pass
    init = read_init(data)
    for _ in iter_samples(data, init):
        pass
    for frag in iter_fragments(data, init):
        moof = data[frag.offset : frag.offset + frag.size]
        guard(parse_moof, moof, frag.offset, init, None, len(data))


def fuzz_one_input(data: bytes) -> None:
    """Feed ``data`` to every reader; anything but a ProtocolError escapes as a finding."""
    guard(_whole_file, data)
    guard(read_mfra, data)
    for parse in _PARSERS:
        guard(parse, data)
    for handler in (b"vide", b"soun", b"meta"):
        guard(parse_sample_entry, data, handler)


if __name__ == "__main__":
    main(fuzz_one_input)
