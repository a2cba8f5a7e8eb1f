"""``tt:`` XML of recording job values, for the ElementItems of the RecordingConfig events.

The event bus carries ElementItem values as lxml elements or zero-argument callables that make
one (see :attr:`nvr.events.Event.elements`); the job engine passes callables, so nothing is
rendered unless a subscriber writes a notification. Element order follows onvif.xsd; the
SOAP recording service may reuse these for its responses' ``tt:`` content.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from lxml import etree

from nvr.ingest.job_config import JobConfiguration, JobState

__all__ = ["TT", "configuration_element", "state_element"]

TT: Final = "http://www.onvif.org/ver10/schema"
_NSMAP: Final = {"tt": TT}


def _child(parent: etree._Element, name: str, text: str | None = None) -> etree._Element:
    node = etree.SubElement(parent, f"{{{TT}}}{name}")
    if text is not None:
        node.text = text
    return node


def _source_token(parent: etree._Element, token: str, kind: str) -> None:
    """tt:SourceReference (Type written out although Receiver is its default: clients read it)."""
    node = _child(parent, "SourceToken")
    node.set("Type", kind)
    _child(node, "Token", token)


def _event_filter(parent: etree._Element, spec: Mapping[str, Any]) -> None:
    """tt:RecordingEventFilter from its JSON form (see JobConfiguration.event_filter)."""
    node = _child(parent, "EventFilter")
    for item in spec.get("Filter", ()):
        entry = _child(node, "Filter")
        _child(entry, "Topic", item["Topic"])
        if item.get("Source") is not None:
            _child(entry, "Source", item["Source"])
    for name in ("Before", "After"):
        if spec.get(name) is not None:
            _child(node, name, spec[name])


def configuration_element(
    config: JobConfiguration, name: str = "RecordingJobConfiguration"
) -> etree._Element:
    """A ``tt:RecordingJobConfiguration`` (effective: AutoCreateReceiver never appears)."""
    root = etree.Element(f"{{{TT}}}{name}", nsmap=_NSMAP)
    if config.schedule_token is not None:
        root.set("ScheduleToken", config.schedule_token)
    _child(root, "RecordingToken", config.recording_token)
    _child(root, "Mode", config.mode)
    _child(root, "Priority", str(config.priority))
    for source in config.sources:
        node = _child(root, "Source")
        if source.token:
            _source_token(node, source.token, source.type)
        for track in source.tracks:
            tracks = _child(node, "Tracks")
            _child(tracks, "SourceTag", track.source_tag)
            _child(tracks, "Destination", track.destination)
    if config.event_filter:
        _event_filter(root, config.event_filter)
    return root


def state_element(state: JobState, name: str = "RecordingJobStateInformation") -> etree._Element:
    """A ``tt:RecordingJobStateInformation``."""
    root = etree.Element(f"{{{TT}}}{name}", nsmap=_NSMAP)
    _child(root, "RecordingToken", state.recording_token)
    _child(root, "State", state.state)
    for source in state.sources:
        node = _child(root, "Sources")
        _source_token(node, source.token, source.type)
        _child(node, "State", source.state)
        tracks = _child(node, "Tracks")
        for track in source.tracks:
            entry = _child(tracks, "Track")
            _child(entry, "SourceTag", track.source_tag)
            _child(entry, "Destination", track.destination)
            if track.error is not None:
                _child(entry, "Error", track.error)
            _child(entry, "State", track.state)
    return root
