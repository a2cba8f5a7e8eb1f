"""ONVIF metadata stream (streaming.md §7): hand-built packets of known documents, documents
over several packets, a lost middle packet, forgotten markers, gzip, and garbage."""

from __future__ import annotations

import gzip

import pytest
from lxml import etree

from nvr.protocol.payload import make_depacketizer, make_packetizer
from nvr.protocol.payload.onvif_metadata import OnvifMetadataDepacketizer

TT = "http://www.onvif.org/ver10/schema"


def document(state: str = "true", utc: str = "2025-03-01T10:15:02.500Z") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<tt:MetadataStream xmlns:tt="{TT}"
                   xmlns:wsnt="http://docs.oasis-open.org/wsn/b-2"
                   xmlns:tns1="http://www.onvif.org/ver10/topics">
  <tt:Event>
    <wsnt:NotificationMessage>
      <wsnt:Topic Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet">tns1:VideoSource/MotionAlarm</wsnt:Topic>
      <wsnt:Message>
        <tt:Message UtcTime="{utc}" PropertyOperation="Changed">
          <tt:Source><tt:SimpleItem Name="Source" Value="VideoSource_1"/></tt:Source>
          <tt:Data><tt:SimpleItem Name="State" Value="{state}"/></tt:Data>
        </tt:Message>
      </wsnt:Message>
    </wsnt:NotificationMessage>
  </tt:Event>
</tt:MetadataStream>
""".encode()


def chunks(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


class Feeder:
    def __init__(self, dep: OnvifMetadataDepacketizer | None = None) -> None:
        self.dep = dep or OnvifMetadataDepacketizer()
        self.seq = 40000

    def doc(self, data: bytes, ts: int, size: int = 200, lose: int | None = None) -> list:
        out = []
        parts = chunks(data, size)
        for n, part in enumerate(parts):
            self.seq += 1
            if n != lose:
                # Timestamps are packet creation times: they may differ inside a document.
                out += self.dep.push(part, n == len(parts) - 1, ts + n, self.seq & 0xFFFF)
        return out


def motion_state(doc: bytes) -> str:
    root = etree.fromstring(doc)
    (item,) = root.iterfind(f".//{{{TT}}}Data/{{{TT}}}SimpleItem")
    return item.get("Value")


def test_document_spanning_several_packets() -> None:
    feed = Feeder()
    (au,) = feed.doc(document(), 90000, size=150)
    assert au.data == document() and au.rtp_timestamp == 90000 and au.key
    assert motion_state(au.data) == "true"
    assert etree.QName(etree.fromstring(au.data)).localname == "MetadataStream"


def test_lost_middle_packet_drops_the_document_and_flags_the_next() -> None:
    feed = Feeder()
    assert len(feed.doc(document("true"), 0)) == 1
    assert feed.doc(document("false"), 90000, lose=2) == []
    (au,) = feed.doc(document("true", "2025-03-01T10:15:04Z"), 180000)
    assert au.after_loss and motion_state(au.data) == "true"
    assert feed.dep.stats.dropped_units == 1 and feed.dep.stats.lost_packets == 1


def test_lost_first_packet_skips_to_the_next_document() -> None:
    feed = Feeder()
    feed.doc(document(), 0)
    assert feed.doc(document("false"), 90000, lose=0) == []
    (au,) = feed.doc(document(), 180000)
    assert au.after_loss and au.data == document()


def test_lost_marker_packet_is_not_glued_to_the_next_document() -> None:
    feed = Feeder()
    parts = chunks(document(), 200)
    assert feed.doc(document("false"), 0, lose=len(parts) - 1) == []
    (au,) = feed.doc(document(), 90000)
    assert au.data == document() and au.after_loss


def test_stream_joined_mid_document_waits_for_the_next_one() -> None:
    feed = Feeder()
    assert feed.dep.push(document()[300:], True, 0, 1) == []
    (au,) = feed.dep.push(document(), True, 90000, 2)
    assert au.data == document() and not au.after_loss


def test_forgotten_marker_ends_the_document_at_the_next_declaration() -> None:
    dep = OnvifMetadataDepacketizer()
    dep.push(document(), True, 0, 1)  # learn that documents start with a declaration
    assert dep.push(document("false"), False, 90000, 2) == []
    (au,) = dep.push(document("true"), False, 180000, 3)
    assert motion_state(au.data) == "false" and not au.after_loss


def test_document_without_declaration() -> None:
    doc = document().split(b"?>", 1)[1].lstrip()
    dep = make_depacketizer("vnd.onvif.metadata", 90000)
    (au,) = dep.push(doc, True, 0, 1)
    assert au.data == doc


@pytest.mark.parametrize(
    "garbage",
    [b"not xml at all", b"<?xml version='1.0'?><tt:MetadataStream", b"\x00\x01\x02"],
)
def test_garbage_is_never_emitted(garbage: bytes) -> None:
    dep = OnvifMetadataDepacketizer()
    dep.push(document(), True, 0, 1)
    assert dep.push(garbage, True, 90000, 2) == []
    (au,) = dep.push(document(), True, 180000, 3)
    assert au.data == document()


def test_oversized_document_is_dropped() -> None:
    dep = OnvifMetadataDepacketizer(max_size=1000)
    feed = Feeder(dep)
    assert feed.doc(document() + b" " * 2000, 0) == []
    assert dep.stats.malformed_packets == 1
    (au,) = feed.doc(document(), 90000)
    assert au.after_loss


def test_packetizer_respects_the_mtu_and_marks_the_last_packet() -> None:
    pk = make_packetizer("VND.ONVIF.METADATA", 90000, mtu=100)
    packets = pk.packetize(document())
    assert all(len(p.payload) <= 100 for p in packets)
    assert [p.marker for p in packets] == [False] * (len(packets) - 1) + [True]
    assert b"".join(p.payload for p in packets) == document()
    assert pk.encoding_name == "vnd.onvif.metadata" and pk.clock_rate == 90000


def test_gzip_variant_round_trip_and_bounds() -> None:
    pk = make_packetizer("vnd.onvif.metadata+gzip", 90000, mtu=80)
    packets = pk.packetize(document())
    assert packets[0].payload[:2] == b"\x1f\x8b"
    dep = make_depacketizer("VND.ONVIF.METADATA+GZIP", 90000)
    out = [au for n, p in enumerate(packets) for au in dep.push(p.payload, p.marker, 0, n)]
    assert [au.data for au in out] == [document()]
    # A zip bomb and a truncated stream are refused.
    small = OnvifMetadataDepacketizer(gzip=True, max_size=10000)
    assert small.push(gzip.compress(b"<a>" + b" " * 100000 + b"</a>"), True, 0, 1) == []
    assert small.push(gzip.compress(document())[:-10], True, 1, 2) == []
    assert small.push(b"\x1f\x8bgarbage", True, 2, 3) == []
    assert small.stats.malformed_packets == 3
