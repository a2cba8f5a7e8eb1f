"""The search filter dialect (search.md §6): the spec's examples, what VMSs really send, and
everything outside the dialect refused; lxml's own XPath engine is the oracle where the
expression is plain XPath 1.0."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from nvr.demo.metadata import metadata_document
from nvr.search.xpath import XPathError, compare, parse

INFO = b"""<tt:RecordingInformation xmlns:tt="http://www.onvif.org/ver10/schema">
  <tt:RecordingToken>REC1</tt:RecordingToken>
  <tt:Source><tt:SourceId>rtsp://cam</tt:SourceId><tt:Name>Cam</tt:Name>
    <tt:Location>Basement</tt:Location><tt:Description/><tt:Address/></tt:Source>
  <tt:EarliestRecording>2025-03-01T00:00:00Z</tt:EarliestRecording>
  <tt:Content>front door</tt:Content>
  <tt:Track><tt:TrackToken>VIDEO001</tt:TrackToken><tt:TrackType>Video</tt:TrackType></tt:Track>
  <tt:Track><tt:TrackToken>META001</tt:TrackToken><tt:TrackType>Metadata</tt:TrackType></tt:Track>
  <tt:RecordingStatus>Stopped</tt:RecordingStatus>
</tt:RecordingInformation>"""

ITEMS = b"""<tt:Message xmlns:tt="http://www.onvif.org/ver10/schema">
  <tt:Source><tt:SimpleItem Name="Source" Value="VideoSource_1"/></tt:Source>
  <tt:Data><tt:SimpleItem Name="State" Value="true"/><tt:SimpleItem Name="Level" Value="7"/>
  </tt:Data></tt:Message>"""


def check(expression: str, document: bytes = INFO) -> bool:
    return parse(expression)(etree.fromstring(document))


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('boolean(//Track[TrackType = "Video"])', True),
        ('boolean(//Track[TrackType = "Audio"])', False),
        (
            'boolean(//Source[Location = "Basement"]) and boolean(//Track[TrackType = "Video"])',
            True,
        ),
        ('boolean(//Source[Location = "Attic"]) or boolean(//Track[TrackType = "Metadata"])', True),
        ('not(boolean(//Track[TrackType = "Audio"]))', True),
        ('(boolean(//Track[TrackType = "Audio"]) or not(boolean(//Content[. = "x"])))', None),
        ("boolean(//Source[Location = “Basement”])", True),  # quotes copied from the PDF
        ("boolean(//Source[Location = 'Basement'])", True),
        ('boolean(/Track[TrackType = "Metadata"])', True),  # rule [11]: one leading slash
        ('boolean(/RecordingInformation/Track[TrackType = "Video"])', True),
        ('boolean(//tt:Track[tt:TrackType = "Video"])', True),
        ('boolean(//Track[TrackType != "Video"])', True),  # META001
        ('boolean(//Track[not(TrackType = "Video") and TrackToken = "META001"])', True),
        ('boolean(//Track[TrackType = "Video" and TrackToken = "META001"])', False),
        ('boolean(//EarliestRecording[. = "x"])', None),
        ('contains(//Source/Location, "Base")', True),
        ('contains(//Content, "back")', False),
        ('boolean(//RecordingStatus[RecordingStatus = "Stopped"])', False),
        ("//Track", True),  # a bare path is boolean(path)
        ('boolean(//Track/TrackType[@x = "1"])', False),
    ],
)
def test_recording_information_filters(expression: str, expected: bool | None) -> None:
    if expected is None:
        with pytest.raises(XPathError):
            parse(expression)
    else:
        assert check(expression) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('boolean(//SimpleItem[@Name = "State" and @Value = "true"])', True),
        ('boolean(//SimpleItem[@Name = "State" and @Value = "false"])', False),
        ('boolean(//Data/SimpleItem[@Name = "Level" and @Value > "5"])', True),
        ('boolean(//SimpleItem[@Name = "Level" and @Value >= 7])', True),
        ('boolean(//SimpleItem[@Name = "Level" and @Value < "10"])', True),  # numeric, not "7"<"1"
        ('boolean(//Source/SimpleItem[@Value = "true"])', False),
        ('boolean(//SimpleItem[@Name = "Source"]) and not(boolean(//ElementItem))', True),
    ],
)
def test_item_filters(expression: str, expected: bool) -> None:
    assert check(expression, ITEMS) is expected


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "boolean(",
        "Track",
        "count(//Track) > 1",
        'boolean(//Track[TrackType ~ "x"])',
        "boolean(//Track[TrackType = Video])",
        'boolean(//Track[TrackType = "Video"]',
        'boolean(//Track[TrackType = "Video"]) and',
        'boolean(//Track[@ = "x"])',
        "boolean(//*)",
        "boolean(//Track) boolean(//Track)",
        "not(" * 100 + "//Track" + ")" * 100,
        "x" * 5000,
    ],
)
def test_outside_the_dialect(expression: str) -> None:
    with pytest.raises(XPathError):
        parse(expression)


def test_comparisons() -> None:
    assert compare("10", ">", "9") and not compare("10", ">", "9x")  # numbers, else strings
    assert compare("2025-03-02T00:00:00Z", ">", "2025-03-01T23:59:59Z")
    assert compare("1.0", "!=", "1")  # = and != compare strings
    assert compare("nan", ">", "1") and compare(" 1e3", ">", "999")  # NaN is a string here


@given(st.floats(-1, 1, allow_nan=False), st.sampled_from(["<", "<=", ">", ">="]))
def test_bounding_box_filters_agree_with_lxml(threshold: float, op: str) -> None:
    document = metadata_document(1_750_000_013_000_000)
    ours = check(f'boolean(//Object/Appearance/Shape/BoundingBox[@right {op} "{threshold}"])',
                 document)  # fmt: skip
    oracle = etree.fromstring(document).xpath(
        f"boolean(//*[local-name()='BoundingBox'][number(@right) {op} {threshold!r}])"
    )
    assert ours is bool(oracle)
