"""A fake IP camera: GStreamer's RTSP server with live test sources.

Run with Debian's ``/usr/bin/python3`` (PyGObject with GstRtspServer imports only there, see
DESIGN.md §11); the project's tests start it through ``tests/peers/camera.py``. It prints
``READY <port>`` once it listens (``--port 0`` lets the kernel pick the port, which avoids
races between parallel test runs) and serves until killed.

Sources are live (``is-live=true``): a moving test pattern with a time overlay, and a sine tone
for audio, so RTP timestamps follow the wall clock like a real camera's.
"""

from __future__ import annotations

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

KINDS = ("h264", "h265", "mjpeg", "h264+aac", "h264+pcmu")


def video_branch(codec: str, args: argparse.Namespace) -> str:
    """A live video source encoded for ``codec`` and payloaded as stream 0."""
    src = (
        f"videotestsrc is-live=true pattern={args.pattern} "
        f"! video/x-raw,format=I420,width={args.width},height={args.height},framerate={args.fps}/1 "
        '! timeoverlay font-desc="Sans 12" '
    )
    if codec == "h264":
        enc = (
            f"! x264enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop} "
            f"bitrate={args.bitrate} ! video/x-h264,profile=baseline "
            "! rtph264pay name=pay0 pt=96 config-interval=-1"
        )
    elif codec == "h265":
        enc = (
            f"! x265enc tune=zerolatency speed-preset=ultrafast key-int-max={args.gop} "
            f"bitrate={args.bitrate} ! rtph265pay name=pay0 pt=96 config-interval=-1"
        )
    elif codec == "mjpeg":
        enc = "! jpegenc quality=50 ! rtpjpegpay name=pay0 pt=26"
    else:
        raise SystemExit(f"unknown video codec {codec!r}")
    return src + enc


def audio_branch(codec: str) -> str:
    """A live sine tone encoded for ``codec`` and payloaded as stream 1."""
    if codec == "aac":
        return (
            "audiotestsrc is-live=true wave=sine freq=440 "
            "! audio/x-raw,rate=16000,channels=1 ! voaacenc bitrate=32000 "
            "! rtpmp4gpay name=pay1 pt=97"
        )
    if codec == "pcmu":
        return (
            "audiotestsrc is-live=true wave=sine freq=440 "
            "! audio/x-raw,rate=8000,channels=1 ! mulawenc ! rtppcmupay name=pay1 pt=0"
        )
    raise SystemExit(f"unknown audio codec {codec!r}")


def launch_line(args: argparse.Namespace) -> str:
    video, _, audio = args.kind.partition("+")
    parts = [video_branch(video, args)]
    if audio:
        parts.append(audio_branch(audio))
    return "( " + "  ".join(parts) + " )"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--mount", default="/cam")
    parser.add_argument("--kind", choices=KINDS, default="h264")
    parser.add_argument("--user", help="enable digest authentication for this user")
    parser.add_argument("--password", default="")
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--gop", type=int, default=25, help="key frame interval in frames")
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--bitrate", type=int, default=300, help="kbit/s")
    parser.add_argument("--pattern", default="ball")
    parser.add_argument(
        "--session-timeout", type=int, default=0, help="seconds; 0 keeps GStreamer's 60"
    )
    parser.add_argument("--shared", action="store_true", help="one pipeline for all clients")
    args = parser.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))

    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch_line(args))
    factory.set_shared(args.shared)
    factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP | GstRtsp.RTSPLowerTrans.UDP)

    if args.user:
        auth = GstRtspServer.RTSPAuth()
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "camera-user")
        auth.add_digest(args.user, args.password, token)
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("camera-user", "media.factory.access", True)
        permissions.add_permission_for_role("camera-user", "media.factory.construct", True)
        factory.set_permissions(permissions)

    server.get_mount_points().add_factory(args.mount, factory)

    if args.session_timeout:
        timeout = args.session_timeout

        def on_new_session(_client: object, session: GstRtspServer.RTSPSession) -> None:
            session.set_timeout(timeout)

        server.connect("client-connected", lambda _s, c: c.connect("new-session", on_new_session))

    pool = server.get_session_pool()

    def cleanup() -> bool:
        pool.cleanup()  # expire timed-out sessions; GStreamer leaves this to the application
        return True

    GLib.timeout_add(500, cleanup)

    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on {args.host}:{args.port}")
    loop = GLib.MainLoop()
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGTERM, loop.quit)
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signal.SIGINT, loop.quit)
    print(f"READY {server.get_bound_port()} {args.mount}", flush=True)
    loop.run()
    sys.exit(0)


if __name__ == "__main__":
    main()
