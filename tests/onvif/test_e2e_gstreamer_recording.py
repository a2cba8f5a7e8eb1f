"""End to end, as a VMS would do it: a real ``nvr serve`` records a GStreamer RTSP camera set up
purely through ONVIF, and the recording job's state changes arrive on a pull point.

Clients are zeep, built from the official WSDLs, with HTTP Digest (device, receiver, search,
replay) and WS-UsernameToken (events, recording); every answer is validated against the
official schemas. Flow: GetServices → CreatePullPointSubscription (RecordingConfig topics) →
CreateReceiver (the camera's URI) → CreateRecording → CreateRecordingJob (Active) → JobState
Active on the pull point → data in the recording (search) and playable over the replay URI
(ffprobe) → SetRecordingJobMode Idle → JobState Idle → DeleteRecordingJob.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from nvr.onvif.namespaces import SOAP12, TEV, TRC, TRP, TRV, TSE, TT, WSNT
from tests.conftest import require_binary
from tests.daemon import Daemon, run_nvr
from tests.onvif.conftest import ADMIN, OPERATOR, USER
from tests.onvif.schemas import DEVICE_WSDL, assert_valid
from tests.onvif.zeep_client import OnvifClient
from tests.peers.camera import gst_camera
from tests.playback.helpers import wait_for

pytestmark = pytest.mark.timeout(240)

TNS1 = "http://www.onvif.org/ver10/topics"
CONCRETE_SET = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
WSDLS = {
    TEV: ("ver10/events/wsdl/event.wsdl", f"{{{TEV}}}EventBinding"),
    TRV: ("ver10/receiver.wsdl", f"{{{TRV}}}ReceiverBinding"),
    TRC: ("ver10/recording.wsdl", f"{{{TRC}}}RecordingBinding"),
    TSE: ("ver10/search.wsdl", f"{{{TSE}}}SearchBinding"),
    TRP: ("ver10/replay.wsdl", f"{{{TRP}}}ReplayBinding"),
}
NS = {"env": SOAP12, "tev": TEV, "wsnt": WSNT, "tt": TT}


class Vms:
    """zeep clients for the services the device lists, each answer schema-checked."""

    def __init__(self, base_url: str) -> None:
        device = OnvifClient(base_url + "/onvif/device_service", digest=USER)
        services = device.service.GetServices(IncludeCapability=False)
        assert_valid(device.last_response, DEVICE_WSDL)
        self.xaddrs = {s.Namespace: s.XAddr for s in services}
        self.clients: dict[str, OnvifClient] = {}

    def client(self, namespace: str, **auth: Any) -> OnvifClient:
        wsdl, binding = WSDLS[namespace]
        client = OnvifClient(self.xaddrs[namespace], wsdl=wsdl, binding=binding, **auth)
        self.clients[namespace] = client
        return client

    def call(self, namespace: str, operation: str, **kwargs: Any) -> Any:
        client = self.clients[namespace]
        result = getattr(client.service, operation)(**kwargs)
        assert_valid(client.last_response, WSDLS[namespace][0])
        return result


class PullPoint:
    def __init__(self, vms: Vms, expression: str) -> None:
        self.vms = vms
        events = vms.clients[TEV]
        topic = etree.Element(
            f"{{{WSNT}}}TopicExpression", Dialect=CONCRETE_SET, nsmap={"tns1": TNS1}
        )
        topic.text = expression
        kind = events.type(f"{{{WSNT}}}FilterType")
        result = vms.call(
            TEV,
            "CreatePullPointSubscription",
            Filter=kind(_value_1=[topic]),
            InitialTerminationTime="PT5M",
        )
        address = result.SubscriptionReference.Address._value_1
        self.port = events.client.create_service(f"{{{TEV}}}PullPointSubscriptionBinding", address)
        self.manager = events.client.create_service(f"{{{TEV}}}SubscriptionManagerBinding", address)
        self.seen: list[tuple[str, dict[str, str]]] = []

    def pull(self) -> list[tuple[str, dict[str, str]]]:
        """(topic, {item: value}) of the messages of one PullMessages (waiting up to 2 s)."""
        events = self.vms.clients[TEV]
        self.port.PullMessages(Timeout="PT2S", MessageLimit=50)
        root = assert_valid(events.last_response, WSDLS[TEV][0])
        got = []
        for message in root.iterfind(".//wsnt:NotificationMessage", NS):
            topic = message.findtext("wsnt:Topic", namespaces=NS) or ""
            items = {
                i.get("Name"): i.get("Value") for i in message.iterfind(".//tt:SimpleItem", NS)
            }
            got.append((topic.partition(":")[2], items))
        self.seen += got
        return got

    def wait_job_state(self, job: str, state: str, timeout: float = 60) -> None:
        def arrived() -> bool:
            return any(
                topic == "RecordingConfig/JobState"
                and items.get("RecordingJobToken") == job
                and items.get("State") == state
                for topic, items in self.pull()
            )

        wait_for(arrived, timeout, f"JobState {state} of {job}", lambda: self.seen)


def add_users(data: Path, database_url: str) -> None:
    for (name, password), level in (
        (ADMIN, "administrator"),
        (OPERATOR, "operator"),
        (USER, "user"),
    ):
        done = run_nvr(
            "user",
            "add",
            name,
            "--level",
            level,
            "--password-stdin",
            "--data-dir",
            str(data),
            "--database-url",
            database_url,
            stdin=password + "\n",
        )
        assert done.returncode == 0, done.stderr


def video_track(info: Any) -> Any:
    """The video track search knows of (None until the indexer has seen it)."""
    return next((t for t in info.Track if t.TrackType == "Video"), None)


@pytest.mark.ffmpeg
def test_gstreamer_camera_recorded_through_onvif(tmp_path: Path, database_url: str) -> None:
    ffprobe = require_binary("ffprobe")
    data = tmp_path / "data"
    add_users(data, database_url)
    with gst_camera("h264") as camera:
        daemon = Daemon(data, database_url, env={"NVR_DISCOVERY_ENABLED": "false"})
        try:
            daemon.wait_ready()
            vms = Vms(daemon.base_url)
            vms.client(TEV, wsse=OPERATOR)
            vms.client(TRV, digest=OPERATOR)
            vms.client(TRC, wsse=ADMIN)
            vms.client(TSE, digest=USER)
            vms.client(TRP, digest=USER)
            pull_point = PullPoint(vms, "tns1:RecordingConfig//.")

            receiver = vms.call(
                TRV,
                "CreateReceiver",
                Configuration={
                    "Mode": "AutoConnect",
                    "MediaUri": camera.url(),
                    "StreamSetup": {"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                },
            )
            recording = vms.call(
                TRC,
                "CreateRecording",
                RecordingConfiguration={
                    "Source": {
                        "SourceId": "urn:gst-camera",
                        "Name": "GStreamer camera",
                        "Location": "test bench",
                        "Description": "videotestsrc",
                        "Address": camera.url(),
                    },
                    "Content": "end-to-end",
                    "MaximumRetentionTime": "PT0S",
                },
            )
            created = vms.call(
                TRC,
                "CreateRecordingJob",
                JobConfiguration={
                    "RecordingToken": recording,
                    "Mode": "Active",
                    "Priority": 1,
                    # the camera sends video only: map just that track, so the job is Active
                    # rather than PartiallyActive (audio and metadata would stay Idle)
                    "Source": [
                        {
                            "SourceToken": {"Token": receiver.Token},
                            "Tracks": [{"SourceTag": "VIDEO", "Destination": "VIDEO001"}],
                        }
                    ],
                },
            )
            job = created.JobToken
            assert created.JobConfiguration.Source[0].SourceToken.Token == receiver.Token

            pull_point.wait_job_state(job, "Active")
            state = vms.call(TRC, "GetRecordingJobState", JobToken=job)
            assert state.State == "Active"
            assert vms.call(TRV, "GetReceiverState", ReceiverToken=receiver.Token).State == (
                "Connected"
            )

            def recorded() -> Any:
                info = vms.call(TSE, "GetRecordingInformation", RecordingToken=recording)
                track = video_track(info)
                if track is None or track.DataFrom is None or track.DataTo is None:
                    return None
                return (track.DataTo - track.DataFrom).total_seconds() >= 2 and info

            info = wait_for(recorded, 60, "two seconds of video in the recording")
            assert info.Source.Name == "GStreamer camera"

            uri = vms.call(
                TRP,
                "GetReplayUri",
                StreamSetup={"Stream": "RTP-Unicast", "Transport": {"Protocol": "RTSP"}},
                RecordingToken=recording,
            )
            probe = subprocess.run(
                [
                    ffprobe,
                    "-v",
                    "error",
                    "-rtsp_transport",
                    "tcp",
                    "-user_agent",
                    "nvr-e2e",
                    "-show_entries",
                    "stream=codec_name",
                    "-of",
                    "csv=p=0",
                    uri.replace("rtsp://", f"rtsp://{USER[0]}:{USER[1]}@", 1),
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert "h264" in probe.stdout.split(), probe.stderr

            vms.call(TRC, "SetRecordingJobMode", JobToken=job, Mode="Idle")
            pull_point.wait_job_state(job, "Idle")
            assert vms.call(TRC, "GetRecordingJobState", JobToken=job).State == "Idle"
            vms.call(TRC, "DeleteRecordingJob", JobToken=job)
            assert [j.JobToken for j in vms.call(TRC, "GetRecordingJobs")] == []
            pull_point.manager.Unsubscribe()
            assert_valid(vms.clients[TEV].last_response, WSDLS[TEV][0])
        finally:
            code = daemon.stop()
        log = daemon.log()
        assert code == 0, log
        assert "Traceback" not in log, log
