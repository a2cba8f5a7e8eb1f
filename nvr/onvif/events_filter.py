"""Subscription filters (wsnt:FilterType): topic expressions and ItemFilter message content.

Topic expressions, Core §9.6.3: the ConcreteSet dialect ``Path ('|' Path)*`` where a path is
``Root('/'Child)*`` optionally ending in ``//.`` (the topic and its subtree). Prefixes resolve
with the namespace context of the TopicExpression element and topics compare by namespace
URI; ``tns1`` is taken as the ONVIF topic namespace even when a client forgets to declare it
(many do). The Concrete dialect is accepted with the same grammar (ConcreteSet only extends it).

Message content, Core §9.4 (dialect ItemFilter; the XPath 1.0 dialect URI is accepted for
expressions within the same subset)::

    Expr     ::= And ('or' And)*           And     ::= Unary ('and' Unary)*
    Unary    ::= 'not' '(' Expr ')' | '(' Expr ')' | 'boolean' '(' Path ')' | Path
    Path     ::= '//' [prefix ':'] ('SimpleItem' | 'ElementItem') ['[' AttrExpr ']']
    AttrExpr ::= the same and/or/not/() structure over  ('@Name' | '@Value') ('=' | '!=') Literal

Items are looked up in Source, Key and Data alike. Several TopicExpression or MessageContent
elements in one filter must all match (WS-BaseNotification); one without a Dialect attribute
is read in the ONVIF dialect. The resource-query filters (``tt:LocationFilter``, PrefixFilter,
ScopeFilter, SelectFilter) are further children of the filter, read by
:mod:`nvr.onvif.resources_filter`. Errors carry the name of the wsnt fault the service answers
with.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from lxml import etree

from nvr.events import Event
from nvr.onvif.events_topics import (
    CONCRETE,
    CONCRETE_SET,
    TNS1,
    TOPIC_PREFIX,
    TopicPath,
    topic_path,
)
from nvr.onvif.namespaces import TT, WSNT, clark
from nvr.onvif.resources_filter import (
    ResourceFilter,
    ResourceFilterError,
    is_resource_filter,
    parse_resource_filters,
)

TOPIC_DIALECTS: Final = (CONCRETE, CONCRETE_SET)
_TOPIC_ALIASES: Final = {
    # Core's own GetEventProperties example lists this misspelling; accept it as ConcreteSet.
    "http://docs.oasis-open.org/wsnt/t-1/TopicExpression/ConcreteSet": CONCRETE_SET,
}
ITEM_FILTER: Final = "http://www.onvif.org/ver10/tev/messageContentFilter/ItemFilter"
XPATH_1: Final = "http://www.w3.org/TR/1999/REC-xpath-19991116"
CONTENT_DIALECTS: Final = (ITEM_FILTER,)
MAX_EXPRESSION: Final = 4096

_NAME: Final = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_NAME_RE: Final = re.compile(rf"^(?:({_NAME}):)?({_NAME})$")


class FilterError(ValueError):
    """A filter we cannot accept; ``fault`` names the wsnt fault element to answer with."""

    def __init__(self, fault: str, reason: str, unknown: etree.QName | None = None) -> None:
        super().__init__(reason)
        self.fault = fault
        self.reason = reason
        self.unknown = unknown


def _invalid_topic(reason: str) -> FilterError:
    return FilterError("InvalidTopicExpressionFault", reason)


def _invalid_content(reason: str) -> FilterError:
    return FilterError("InvalidMessageContentExpressionFault", reason)


# --- topic expressions ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicPattern:
    namespace: str
    names: tuple[str, ...]
    subtree: bool

    def matches(self, path: TopicPath) -> bool:
        namespace, names = path
        if namespace != self.namespace:
            return False
        if self.subtree:
            return names[: len(self.names)] == self.names
        return names == self.names


def _resolve(prefix: str | None, nsmap: dict[str | None, str]) -> str:
    """Namespace of a topic QName; unprefixed and undeclared ``tns1`` mean the ONVIF one."""
    if prefix is None:
        return TNS1
    namespace = nsmap.get(prefix)
    if namespace is None and prefix == TOPIC_PREFIX:
        return TNS1
    if namespace is None:
        raise _invalid_topic(f"namespace prefix {prefix!r} is not declared")
    return namespace


def _topic_path(text: str, nsmap: dict[str | None, str]) -> TopicPattern:
    subtree = text.endswith("//.")
    body = text[:-3] if subtree else text
    steps = body.split("/")
    if not body or any(not step for step in steps):
        raise _invalid_topic(f"malformed topic path {text[:80]!r}")
    namespace = ""
    names: list[str] = []
    for index, step in enumerate(steps):
        match = _NAME_RE.match(step)
        if match is None:
            raise _invalid_topic(f"{step[:40]!r} is not a topic name")
        prefix, local = match.groups()
        if index == 0:
            namespace = _resolve(prefix, nsmap)
        elif prefix is not None:
            _resolve(prefix, nsmap)  # must at least be declared
        names.append(local)
    return TopicPattern(namespace, tuple(names), subtree)


def parse_topic_expression(
    text: str, dialect: str, nsmap: dict[str | None, str]
) -> tuple[TopicPattern, ...]:
    dialect = _TOPIC_ALIASES.get(dialect.strip(), dialect.strip())
    if dialect not in TOPIC_DIALECTS:
        raise FilterError(
            "TopicExpressionDialectUnknownFault", f"unknown topic dialect {dialect[:120]!r}"
        )
    text = text.strip()
    if not text or len(text) > MAX_EXPRESSION:
        raise _invalid_topic("empty or overlong topic expression")
    return tuple(_topic_path(part.strip(), nsmap) for part in text.split("|"))


# --- message content --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Items:
    """What a content filter sees of an event: its simple items and element item names."""

    simple: tuple[tuple[str, str], ...]
    elements: tuple[str, ...]

    @classmethod
    def of(cls, event: Event) -> Items:
        return cls(event.source + event.data, tuple(name for name, _ in event.elements))


Predicate = Callable[[Items], bool]
ItemTest = Callable[[str, str | None], bool]

_TOKEN: Final = re.compile(
    r'\s*(?:(?P<str>"[^"]*"|\'[^\']*\'|“[^”]*”)|(?P<op>!=|//|[()\[\]=])'
    rf"|(?P<attr>@{_NAME})|(?P<name>(?:{_NAME}:)?{_NAME}))"
)


def _any_item(name: str, value: str | None) -> bool:
    return True


class _Parser:
    def __init__(self, text: str, nsmap: dict[str | None, str]) -> None:
        self.nsmap = nsmap
        self.tokens = self._tokenize(text)
        self.pos = 0

    @staticmethod
    def _tokenize(text: str) -> list[tuple[str, str]]:
        tokens: list[tuple[str, str]] = []
        pos, end = 0, len(text.rstrip())
        while pos < end:
            match = _TOKEN.match(text, pos)
            if match is None or match.end() == pos:
                raise _invalid_content(f"unexpected text at {text[pos : pos + 20]!r}")
            kind = match.lastgroup or ""
            tokens.append((kind, match.group(kind)))
            pos = match.end()
        return tokens

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else ("end", "")

    def take(self, value: str | None = None, kind: str | None = None) -> str:
        token_kind, token = self.peek()
        if (value is not None and token != value) or (kind is not None and token_kind != kind):
            raise _invalid_content(f"expected {value or kind}, found {token or 'the end'!r}")
        self.pos += 1
        return token

    def at_word(self, word: str) -> bool:
        return self.peek() == ("name", word)

    # Both levels (items and attributes) share the and/or/not/() structure.
    def boolean(self, atom: Callable[[], Callable[..., bool]]) -> Callable[..., bool]:
        terms = [self.conjunction(atom)]
        while self.at_word("or"):
            self.pos += 1
            terms.append(self.conjunction(atom))
        return terms[0] if len(terms) == 1 else lambda *a: any(t(*a) for t in terms)

    def conjunction(self, atom: Callable[[], Callable[..., bool]]) -> Callable[..., bool]:
        terms = [self.unary(atom)]
        while self.at_word("and"):
            self.pos += 1
            terms.append(self.unary(atom))
        return terms[0] if len(terms) == 1 else lambda *a: all(t(*a) for t in terms)

    def unary(self, atom: Callable[[], Callable[..., bool]]) -> Callable[..., bool]:
        if self.at_word("not"):
            self.pos += 1
            self.take("(")
            inner = self.boolean(atom)
            self.take(")")
            return lambda *a: not inner(*a)
        if self.peek() == ("op", "("):
            self.pos += 1
            inner = self.boolean(atom)
            self.take(")")
            return inner
        return atom()

    def item_atom(self) -> Predicate:
        if self.at_word("boolean"):
            self.pos += 1
            self.take("(")
            path = self.path()
            self.take(")")
            return path
        return self.path()

    def path(self) -> Predicate:
        self.take("//")
        prefix, _, local = self.take(kind="name").rpartition(":")
        if prefix and (self.nsmap.get(prefix) or (TT if prefix == "tt" else None)) != TT:
            raise _invalid_content(f"{prefix}:{local} is not a tt: item")
        if local not in ("SimpleItem", "ElementItem"):
            raise _invalid_content(f"only SimpleItem and ElementItem can be tested, not {local}")
        test: ItemTest = _any_item
        if self.peek() == ("op", "["):
            self.pos += 1
            test = self.boolean(self.comparison)
            self.take("]")
        if local == "SimpleItem":
            return lambda items: any(test(n, v) for n, v in items.simple)
        return lambda items: any(test(n, None) for n in items.elements)

    def comparison(self) -> ItemTest:
        attribute = self.take(kind="attr")
        if attribute not in ("@Name", "@Value"):
            raise _invalid_content(f"only @Name and @Value can be compared, not {attribute}")
        operator = self.take(kind="op")
        if operator not in ("=", "!="):
            raise _invalid_content(f"unsupported operator {operator!r}")
        literal = self.take(kind="str")[1:-1]
        equal = operator == "="
        if attribute == "@Name":
            return lambda name, value: (name == literal) == equal
        return lambda name, value: value is not None and (value == literal) == equal

    def expression(self) -> Predicate:
        result = self.boolean(self.item_atom)
        if self.pos != len(self.tokens):
            raise _invalid_content(f"unexpected {self.peek()[1]!r} after the expression")
        return result


def parse_message_content(text: str, dialect: str, nsmap: dict[str | None, str]) -> Predicate:
    if dialect.strip() not in (ITEM_FILTER, XPATH_1):
        raise _invalid_content(f"unknown message content dialect {dialect[:120]!r}")
    if not text.strip() or len(text) > MAX_EXPRESSION:
        raise _invalid_content("empty or overlong message content expression")
    return _Parser(text, nsmap).expression()


# --- the whole filter -------------------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Topic and content conditions of one subscription; the empty filter passes everything."""

    topics: tuple[tuple[TopicPattern, ...], ...] = ()
    contents: tuple[Predicate, ...] = ()
    resources: ResourceFilter = field(default_factory=ResourceFilter)
    """Resource-query filters (:mod:`nvr.onvif.resources_filter`): tns1:Resource only."""

    def matches_topic(self, topic: str) -> bool:
        try:
            path = topic_path(topic)
        except ValueError:
            return not self.topics
        return all(any(p.matches(path) for p in group) for group in self.topics)

    def matches(self, event: Event) -> bool:
        if not self.matches_topic(event.topic) or not self.resources.matches(event):
            return False
        if not self.contents:
            return True
        items = Items.of(event)
        return all(content(items) for content in self.contents)

    def view(self, event: Event) -> Event:
        """What a matching ``event`` looks like to this subscription (SelectFilter)."""
        return self.resources.view(event)


def _text(element: etree._Element) -> str:
    if len(element):
        raise _invalid_topic("a topic expression holds text, not elements")
    return element.text or ""


def parse_filter(element: etree._Element | None) -> EventFilter:
    """The tev:Filter element of CreatePullPointSubscription (None: no filter)."""
    if element is None:
        return EventFilter()
    topics: list[tuple[TopicPattern, ...]] = []
    contents: list[Predicate] = []
    resources: list[etree._Element] = []
    for child in element.iterchildren(tag=etree.Element):
        nsmap = dict(child.nsmap)
        dialect = child.get("Dialect") or ""
        if child.tag == clark(WSNT, "TopicExpression"):
            topics.append(parse_topic_expression(_text(child), dialect or CONCRETE_SET, nsmap))
        elif child.tag == clark(WSNT, "MessageContent"):
            contents.append(parse_message_content(child.text or "", dialect or ITEM_FILTER, nsmap))
        elif is_resource_filter(child):
            resources.append(child)
        else:
            name = etree.QName(child)
            raise FilterError(
                "InvalidFilterFault", f"filter {name.localname} is not supported", name
            )
    try:
        resource_filter = parse_resource_filters(resources)
    except ResourceFilterError as error:
        raise _invalid_content(str(error)) from None
    return EventFilter(tuple(topics), tuple(contents), resource_filter)
