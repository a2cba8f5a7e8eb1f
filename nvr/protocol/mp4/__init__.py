"""ISO BMFF (MP4) boxes: writing and reading, sans-IO.

Typical write path (fragmented MP4, nothing transcoded)::

    video = TrackSpec(1, 90000, avc_entry([sps], [pps]))
    init = init_segment([video])
    out.write(init)
    frags = FragmentWriter([video], offset=len(init))
    frags.add_sample(1, access_unit, 3600, key=True)   # length-prefixed NAL units
    out.write(frags.flush())                           # moof + mdat, whenever you choose
    out.write(frags.mfra())                            # optional, last

Reading: ``read_init(src)`` then ``iter_samples(src, init)``, where ``src`` is a buffer or a
``read_at(offset, size)`` callable plus ``size=`` so large files are never loaded whole.

H.264/H.265 samples are stored as given: 4-byte length-prefixed NAL units (``avcC``/``hvcC``
declare ``lengthSizeMinusOne = 3``). In-band parameter sets are neither removed nor required;
use ``avc3``/``hev1`` when they change mid-stream (FFmpeg ignores a per-fragment switch of
sample entry, so a resolution change is best carried in-band).
"""

from __future__ import annotations

from nvr.protocol.codecs.jpeg import jpeg_dimensions
from nvr.protocol.mp4.aac import AudioSpecificConfig, EsDescriptor, parse_audio_specific_config
from nvr.protocol.mp4.avc import AvcDecoderConfig, AvcSps
from nvr.protocol.mp4.box import (
    CONTAINERS,
    Box,
    BoxHeader,
    ReadAt,
    box,
    decode_header,
    full_box,
    header,
    iter_boxes,
    walk,
)
from nvr.protocol.mp4.errors import Mp4Error
from nvr.protocol.mp4.fragment import FragmentWriter
from nvr.protocol.mp4.hevc import HevcDecoderConfig, HevcSps
from nvr.protocol.mp4.index import RandomAccessEntry, build_mfra, parse_mfra, read_mfra
from nvr.protocol.mp4.init import FileType, TrackSpec, build_moov, init_segment, mp4_time
from nvr.protocol.mp4.reader import (
    Fragment,
    InitInfo,
    Sample,
    TrackInfo,
    iter_fragments,
    iter_samples,
    parse_moof,
    parse_moov,
    read_init,
)
from nvr.protocol.mp4.sample_entry import (
    ONVIF_NAMESPACE,
    SampleEntry,
    aac_entry,
    avc_entry,
    g711_entry,
    hevc_entry,
    jpeg_entry,
    jpeg_entry_for,
    metx_entry,
    parse_sample_entry,
)

__all__ = [
    "CONTAINERS",
    "ONVIF_NAMESPACE",
    "AudioSpecificConfig",
    "AvcDecoderConfig",
    "AvcSps",
    "Box",
    "BoxHeader",
    "EsDescriptor",
    "FileType",
    "Fragment",
    "FragmentWriter",
    "HevcDecoderConfig",
    "HevcSps",
    "InitInfo",
    "Mp4Error",
    "RandomAccessEntry",
    "ReadAt",
    "Sample",
    "SampleEntry",
    "TrackInfo",
    "TrackSpec",
    "aac_entry",
    "avc_entry",
    "box",
    "build_mfra",
    "build_moov",
    "decode_header",
    "full_box",
    "g711_entry",
    "header",
    "hevc_entry",
    "init_segment",
    "iter_boxes",
    "iter_fragments",
    "iter_samples",
    "jpeg_dimensions",
    "jpeg_entry",
    "jpeg_entry_for",
    "metx_entry",
    "mp4_time",
    "parse_audio_specific_config",
    "parse_mfra",
    "parse_moof",
    "parse_moov",
    "parse_sample_entry",
    "read_init",
    "read_mfra",
    "walk",
]
