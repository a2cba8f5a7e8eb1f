"""ONVIF RecordingJobTrack ``SourceTag``: which media of a received session feeds a track.

The spec leaves the value space open (recording.md §3); VMSes send one of three things, and we
accept all of them, most specific first:

1. the camera's ``a=x-onvif-track`` value (exact);
2. the media's ``a=control`` — the resolved URL, or its last path segment (``trackID=1``,
   ``track1``, ``stream=0``), or any suffix of the URL after a ``/`` (exact, case-sensitive as
   URLs are);
3. a generic tag ``VIDEO``, ``AUDIO`` or ``METADATA`` (case-insensitive), optionally numbered
   (``VIDEO2``, ``AUDIO001``: the n-th media of that type, 1-based): the first by default.

An empty tag means "the first media of the destination track's type" when the caller says
which type it wants. Metadata is an ``m=application`` media, preferring ONVIF metadata
encodings over other application streams.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from urllib.parse import urlsplit

from nvr.protocol.sdp import MediaStream

__all__ = ["GENERIC_TAGS", "match_source_tag", "media_kind", "source_tag_for"]

GENERIC_TAGS = {"VIDEO": "Video", "AUDIO": "Audio", "METADATA": "Metadata"}
"""Generic tag -> tt:TrackType."""

_GENERIC = re.compile(r"^(VIDEO|AUDIO|METADATA)0*([1-9][0-9]*)?$", re.IGNORECASE)
_MEDIA_KINDS = {"video": "Video", "audio": "Audio", "application": "Metadata"}


def media_kind(stream: MediaStream) -> str | None:
    """The tt:TrackType a media section can feed (None for other media types)."""
    return _MEDIA_KINDS.get(stream.media)


def _is_onvif_metadata(stream: MediaStream) -> bool:
    return (stream.encoding_name or "").lower().startswith("vnd.onvif.metadata")


def _of_kind(streams: Sequence[MediaStream], kind: str) -> list[int]:
    found = [i for i, s in enumerate(streams) if media_kind(s) == kind]
    if kind == "Metadata":  # ONVIF metadata first, other application streams after
        found.sort(key=lambda i: not _is_onvif_metadata(streams[i]))
    return found


def _control_matches(tag: str, url: str) -> bool:
    if tag == url:
        return True
    path = urlsplit(url).path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    return tag == last or url.endswith("/" + tag.lstrip("/"))


def match_source_tag(
    tag: str | None, streams: Sequence[MediaStream], kind: str | None = None
) -> int | None:
    """The position in ``streams`` that ``tag`` names, or None. ``kind`` (tt:TrackType of the
    destination) resolves an empty tag and is not otherwise enforced."""
    tag = (tag or "").strip()
    if not tag:
        found = _of_kind(streams, kind) if kind else []
        return found[0] if found else None
    for i, stream in enumerate(streams):
        if stream.onvif_track is not None and stream.onvif_track == tag:
            return i
    for i, stream in enumerate(streams):
        if _control_matches(tag, stream.control_url):
            return i
    generic = _GENERIC.match(tag)
    if generic is not None:
        found = _of_kind(streams, GENERIC_TAGS[generic.group(1).upper()])
        n = int(generic.group(2) or 1)
        return found[n - 1] if n <= len(found) else None
    return None


def source_tag_for(streams: Sequence[MediaStream], position: int) -> str:
    """The tag we would report for a media: its x-onvif-track, else the generic tag (numbered
    when the session has several media of that type)."""
    stream = streams[position]
    if stream.onvif_track:
        return stream.onvif_track
    kind = media_kind(stream)
    if kind is None:
        return urlsplit(stream.control_url).path.rsplit("/", 1)[-1]
    same = _of_kind(streams, kind)
    name = kind.upper()
    return name if same[0] == position else f"{name}{same.index(position) + 1}"
