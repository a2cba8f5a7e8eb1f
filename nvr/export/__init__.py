"""Evidence export: signed ONVIF export files (fragmented MP4) from recordings, and their check.

* :class:`ExportJob` / :class:`ExportManager` (``job.py``, ``manager.py``): plan a range,
  hold it against retention, stream it into a file, report progress, stop on request;
* :class:`ExportFileWriter` (``onvif_file.py``): the file format (``suep``, ``cstb``,
  ``loci``, ``metx``), sealed by ``signing.py`` (RSASSA-PSS/SHA-256; repeated signing with
  :func:`add_signature`), with the key from ``device_identity.py``;
* :func:`verify_file` (``verify.py``): structure, every signature, every certificate.
"""

from __future__ import annotations

from nvr.export.boxes import Location, SourceEntry, StartTimes, SurveillanceExport
from nvr.export.device_identity import (
    IdentityError,
    SigningIdentity,
    device_identity,
    generate_identity,
    load_identity,
)
from nvr.export.job import (
    ExportCancelled,
    ExportError,
    ExportJob,
    ExportPlan,
    ExportRequest,
    ExportResult,
    JobState,
)
from nvr.export.manager import ExportManager, ExportStatus, FileProgress, UnknownOperation
from nvr.export.onvif_file import ExportFileWriter, ExportHeader, ExportTrack, ExportUnit
from nvr.export.signing import Countersigned, SigningError, add_signature
from nvr.export.verify import VerifyReport, verify_file

__all__ = [
    "Countersigned",
    "ExportCancelled",
    "ExportError",
    "ExportFileWriter",
    "ExportHeader",
    "ExportJob",
    "ExportManager",
    "ExportPlan",
    "ExportRequest",
    "ExportResult",
    "ExportStatus",
    "ExportTrack",
    "ExportUnit",
    "FileProgress",
    "IdentityError",
    "JobState",
    "Location",
    "SigningError",
    "SigningIdentity",
    "SourceEntry",
    "StartTimes",
    "SurveillanceExport",
    "UnknownOperation",
    "VerifyReport",
    "add_signature",
    "device_identity",
    "generate_identity",
    "load_identity",
    "verify_file",
]
