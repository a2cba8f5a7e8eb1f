"""The XPath dialect of ONVIF search (search.md §6), for RecordingInformationFilter and
MetadataFilter: parsed once per search into a predicate over an lxml element tree.

The grammar accepted is the spec's, widened where real clients stray from it::

    Expr  ::= And ('or' And)*                And   ::= Unary ('and' Unary)*
    Unary ::= 'not' '(' Expr ')' | '(' Expr ')' | 'boolean' '(' Path ')'
            | 'contains' '(' Path ',' Literal ')' | Path
    Path  ::= Sep Step (Sep Step)*           Sep   ::= '/' | '//'
    Step  ::= [prefix ':'] Name ['[' Pred ']']
    Pred  ::= the same and / or / not / () structure over   Operand Op Literal
    Operand ::= '@' Name | Name              Op    ::= '=' | '!=' | '<' | '<=' | '>' | '>='

Widenings, each because a VMS or the spec's own examples need it: ``//`` before the first step
(the spec's examples, rule [11] notwithstanding) and a single ``/`` there both mean "anywhere";
a predicate may follow any step, not only the last; names may carry a namespace prefix and
match by local name; typographic quotes (copied from the PDF) count as ``"``; a bare number is
a literal; a bare path means ``boolean(path)``. ``//SimpleItem[@Name = "x" and @Value = "y"]``
needs no special case: it is a step over elements named SimpleItem.

Comparisons follow the spec's note: ``=`` and ``!=`` compare strings; ``<`` ``<=`` ``>`` ``>=``
compare numbers when both sides are numbers, else strings (which orders ISO dateTimes). As in
XPath, a comparison holds when any selected node satisfies it; ``contains`` looks at the text of
every selected node.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from lxml import etree

DIALECT: Final = "http://www.onvif.org/ver10/tse/searchFilter"
MAX_LENGTH: Final = 4096
MAX_DEPTH: Final = 64

Predicate = Callable[[etree._Element], bool]
NodeTest = Callable[[etree._Element], bool]

_QUOTES: Final = str.maketrans({"“": '"', "”": '"', "„": '"', "‘": "'", "’": "'"})
_NAME: Final = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_TOKEN: Final = re.compile(
    r"\s*(?:"
    r'(?P<str>"[^"]*"|\'[^\']*\')'
    r"|(?P<num>-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
    r"|(?P<op>!=|<=|>=|//|[/()\[\]=<>,])"
    rf"|(?P<attr>@(?:{_NAME}:)?{_NAME})"
    rf"|(?P<name>(?:{_NAME}:)?{_NAME})"
    r")"
)
_NUMBER: Final = re.compile(r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
_COMPARE: Final[dict[str, Callable[[object, object], bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class XPathError(ValueError):
    """The expression is not in the search filter dialect."""


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str


def tokenize(text: str) -> list[Token]:
    text = text.translate(_QUOTES)
    tokens: list[Token] = []
    pos, end = 0, len(text.rstrip())
    while pos < end:
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos or match.lastgroup is None:
            raise XPathError(f"unexpected text at {text[pos : pos + 20]!r}")
        tokens.append(Token(match.lastgroup, match.group(match.lastgroup)))
        pos = match.end()
    return tokens


def _number(text: str) -> float | None:
    """The value of an XPath-style number (no NaN, Infinity or hex: those are strings)."""
    text = text.strip()
    return float(text) if _NUMBER.fullmatch(text) else None


def compare(left: str, op: str, right: str) -> bool:
    """One comparison as the dialect defines it (see the module docstring)."""
    test = _COMPARE[op]
    if op not in ("=", "!="):
        a, b = _number(left), _number(right)
        if a is not None and b is not None:
            return test(a, b)
    return test(left, right)


def _local(name: str) -> str:
    return name.rpartition(":")[2]


def _text(node: etree._Element) -> str:
    return "".join(node.itertext()).strip()


@dataclass(frozen=True, slots=True)
class _Step:
    name: str
    descendant: bool
    first: bool
    """The first step also matches the context node itself (``//X`` from the root)."""
    test: NodeTest | None

    def select(self, nodes: Iterable[etree._Element]) -> Iterator[etree._Element]:
        tag = "{*}" + self.name
        seen: set[etree._Element] = set()
        for node in nodes:
            found = node.iter(tag) if self.descendant else node.iterchildren(tag)
            for candidate in found:
                if candidate in seen or (candidate is node and not self.first):
                    continue
                seen.add(candidate)
                if self.test is None or self.test(candidate):
                    yield candidate


def _select(steps: tuple[_Step, ...], root: etree._Element) -> Iterator[etree._Element]:
    nodes: Iterable[etree._Element] = (root,)
    for step in steps:
        nodes = step.select(nodes)
    return iter(nodes)


class _Parser:
    def __init__(self, text: str) -> None:
        if len(text) > MAX_LENGTH:
            raise XPathError(f"the expression is longer than {MAX_LENGTH} characters")
        self.tokens = tokenize(text)
        self.pos = 0
        self.depth = 0

    # ---- token helpers ----------------------------------------------------------------------

    def peek(self, ahead: int = 0) -> Token:
        index = self.pos + ahead
        return self.tokens[index] if index < len(self.tokens) else Token("end", "")

    def take(self, text: str | None = None, kind: str | None = None) -> Token:
        token = self.peek()
        if (text is not None and token.text != text) or (kind is not None and token.kind != kind):
            found = token.text or "the end"
            raise XPathError(f"expected {text or kind}, found {found!r}")
        self.pos += 1
        return token

    def at(self, text: str, kind: str = "op") -> bool:
        token = self.peek()
        return token.kind == kind and token.text == text

    def at_call(self, word: str) -> bool:
        return self.at(word, "name") and self.peek(1) == Token("op", "(")

    # ---- the and / or / not / () structure, shared by both levels ---------------------------

    def boolean(self, atom: Callable[[], Predicate]) -> Predicate:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise XPathError("the expression is nested too deeply")
        terms = [self.conjunction(atom)]
        while self.at("or", "name"):
            self.pos += 1
            terms.append(self.conjunction(atom))
        self.depth -= 1
        if len(terms) == 1:
            return terms[0]
        return lambda node: any(term(node) for term in terms)

    def conjunction(self, atom: Callable[[], Predicate]) -> Predicate:
        terms = [self.unary(atom)]
        while self.at("and", "name"):
            self.pos += 1
            terms.append(self.unary(atom))
        if len(terms) == 1:
            return terms[0]
        return lambda node: all(term(node) for term in terms)

    def unary(self, atom: Callable[[], Predicate]) -> Predicate:
        if self.at_call("not"):
            self.pos += 2
            inner = self.boolean(atom)
            self.take(")")
            return lambda node: not inner(node)
        if self.at("("):
            self.pos += 1
            inner = self.boolean(atom)
            self.take(")")
            return inner
        return atom()

    # ---- expressions ------------------------------------------------------------------------

    def expression_atom(self) -> Predicate:
        if self.at_call("boolean"):
            self.pos += 2
            steps = self.path()
            self.take(")")
            return lambda root: next(_select(steps, root), None) is not None
        if self.at_call("contains"):
            self.pos += 2
            steps = self.path()
            self.take(",")
            needle = self.literal()
            self.take(")")
            return lambda root: any(needle in _text(n) for n in _select(steps, root))
        if self.at("/") or self.at("//"):
            steps = self.path()
            return lambda root: next(_select(steps, root), None) is not None
        raise XPathError(f"expected boolean(), contains() or a path, found {self.peek().text!r}")

    def path(self) -> tuple[_Step, ...]:
        steps: list[_Step] = []
        while self.at("/") or self.at("//"):
            separator = self.take().text
            name = _local(self.take(kind="name").text)
            test = None
            if self.at("["):
                self.pos += 1
                test = self.boolean(self.comparison)
                self.take("]")
            steps.append(_Step(name, separator == "//" or not steps, not steps, test))
        if not steps:
            raise XPathError(f"expected a path, found {self.peek().text or 'the end'!r}")
        return tuple(steps)

    def comparison(self) -> NodeTest:
        token = self.take()
        if token.kind == "attr":
            name = _local(token.text[1:])

            def values(node: etree._Element) -> list[str]:
                found = node.get(name)
                if found is None:  # a prefixed attribute: match its local name
                    found = next(
                        (v for k, v in node.attrib.items() if etree.QName(k).localname == name),
                        None,
                    )
                return [] if found is None else [found]

        elif token.kind == "name":
            tag = "{*}" + _local(token.text)

            def values(node: etree._Element) -> list[str]:
                return [_text(child) for child in node.iterchildren(tag)]

        else:
            raise XPathError(f"expected @attribute or element name, found {token.text!r}")
        op = self.take(kind="op").text
        if op not in _COMPARE:
            raise XPathError(f"unsupported operator {op!r}")
        literal = self.literal()
        return lambda node: any(compare(v, op, literal) for v in values(node))

    def literal(self) -> str:
        token = self.peek()
        if token.kind == "str":
            self.pos += 1
            return token.text[1:-1]
        if token.kind == "num":
            self.pos += 1
            return token.text
        raise XPathError(f"expected a quoted literal, found {token.text or 'the end'!r}")

    def parse(self) -> Predicate:
        if not self.tokens:
            raise XPathError("the expression is empty")
        result = self.boolean(self.expression_atom)
        if self.pos != len(self.tokens):
            raise XPathError(f"unexpected {self.peek().text!r} after the expression")
        return result


def parse(text: str) -> Predicate:
    """Compile an expression; raises :class:`XPathError` when it is outside the dialect."""
    return _Parser(text).parse()


__all__ = ["DIALECT", "Predicate", "XPathError", "compare", "parse", "tokenize"]
