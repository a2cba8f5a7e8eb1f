"""What the index takes from tt:MetadataStream documents (streaming.md §7)."""

from __future__ import annotations

import pytest

from nvr.demo.metadata import MOTION_TOPIC, SOURCE_TOKEN, metadata_document
from nvr.search.metadata import GENERIC_PAN_TILT, GENERIC_ZOOM, parse_document, spaces_of

TT = "http://www.onvif.org/ver10/schema"


def test_demo_document() -> None:
    contents = parse_document(metadata_document(1_750_000_010_000_000))
    (note,) = contents.notifications
    assert note.topic == MOTION_TOPIC and note.is_property
    assert note.source == (("VideoSourceConfigurationToken", SOURCE_TOKEN),)
    assert note.data == (("State", "false"),)
    assert note.message_xml.startswith("<tt:Message")
    (position,) = contents.positions
    assert position.pan_tilt_space is None and position.zoom_space is None  # generic spaces
    assert spaces_of(position) == {GENERIC_PAN_TILT, GENERIC_ZOOM}
    assert contents.has_analytics
    assert parse_document(metadata_document(1_750_000_011_000_000)).notifications == []


def test_other_prefixes_and_frame_ptz() -> None:
    document = f"""<?xml version="1.0"?>
    <m:MetadataStream xmlns:m="{TT}" xmlns:w="http://docs.oasis-open.org/wsn/b-2"
        xmlns:o="http://www.onvif.org/ver10/topics" xmlns:v="http://vendor.example/topics">
      <m:VideoAnalytics><m:Frame UtcTime="2025-01-01T00:00:00Z">
        <m:PTZStatus><m:Position><m:PanTilt x="10" y="-5" space="urn:degrees"/></m:Position>
        </m:PTZStatus></m:Frame></m:VideoAnalytics>
      <m:Event>
        <w:NotificationMessage><w:Topic Dialect="x">o:RuleEngine/LineDetector/Crossed</w:Topic>
          <w:Message><m:Message UtcTime="2025-01-01T00:00:00Z">
            <m:Data><m:SimpleItem Name="ObjectId" Value="7"/></m:Data></m:Message></w:Message>
        </w:NotificationMessage>
        <w:NotificationMessage><w:Topic Dialect="x">v:Thing/Happened</w:Topic>
          <w:Message><m:Message UtcTime="2025-01-01T00:00:00Z"/></w:Message>
        </w:NotificationMessage>
        <w:NotificationMessage><w:Topic>v:No/Message</w:Topic></w:NotificationMessage>
      </m:Event>
    </m:MetadataStream>""".encode()
    contents = parse_document(document)
    assert [n.topic for n in contents.notifications] == [
        "tns1:RuleEngine/LineDetector/Crossed",
        "v:Thing/Happened",
    ]
    assert not contents.notifications[0].is_property
    (position,) = contents.positions
    assert (position.pan, position.tilt, position.zoom) == (10.0, -5.0, None)
    assert spaces_of(position) == {"urn:degrees"}


@pytest.mark.parametrize(
    "document",
    [b"", b"<not xml", b"<x/>", b'<!DOCTYPE x [<!ENTITY e "e">]><x>&e;</x>'],
)
def test_not_a_metadata_stream(document: bytes) -> None:
    with pytest.raises(ValueError):
        parse_document(document)
