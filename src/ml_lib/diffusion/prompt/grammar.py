"""Parse one prompt (an ``AND`` part, extra networks removed) into a lossless node tree.

The grammar is A1111's prompt-editing grammar::

    start      := (prompt | one of "[ ] ( ) :")*        stray brackets are text at the top level only
    prompt     := (emphasized | scheduled | alternate | plain)*
    emphasized := "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
    scheduled  := "[" [prompt ":"] prompt ":" \\s* NUMBER \\s* "]"
    alternate  := "[" prompt ("|" [prompt])+ "]"
    plain      := (any character but \\ [ ] ( ) : |  or  \\ followed by a character)+

As in A1111, a text the grammar cannot read at all (a ``|`` outside an alternation, a trailing
backslash) is one plain text: it gets no editing or alternation, only emphasis.

Known differences from A1111's lark parser, both on malformed input: lark gives up on a few prompts
where an edit is directly followed by stray brackets or colons (``[a:1 ](``), where we keep the edit;
and a prompt with brackets nested over 100 deep is read as one plain text rather than recursing without
bound (once: retrying from each bracket would cost 100 steps per bracket; such a prompt is refused by
the nesting limit of :mod:`.limits` anyway).
"""

from __future__ import annotations

import logging
import re

from .nodes import Alternation, Emphasis, Node, Scheduled, Text

__all__ = ["parse_nodes"]

log = logging.getLogger(__name__)

_PLAIN = re.compile(r"(?:[^\\\[\]():|]|\\.)+")
_WHEN = re.compile(r"(\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*)\]")
_STRAY = "[]():"


_MAX_DEPTH = 100


class _NoParse(Exception):
    """A construct that does not match the grammar at this position."""


class _TooDeep(Exception):
    """Brackets nested deeper than :data:`_MAX_DEPTH`: the whole prompt is read as text."""


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.memo: dict[int, tuple[Node, int] | None] = {}
        self.depth = 0

    def top(self) -> tuple[Node, ...]:
        text, pos, nodes = self.text, 0, list[Node]()
        literal: list[str] = []

        def flush() -> None:
            if literal:
                nodes.append(Text("".join(literal)))
                literal.clear()

        while pos < len(text):
            char = text[pos]
            if char in "([":
                try:
                    node, pos = self.construct(pos)
                except _NoParse:
                    literal.append(char)
                    pos += 1
                    continue
                flush()
                nodes.append(node)
            elif char in _STRAY:
                literal.append(char)
                pos += 1
            else:
                match = _PLAIN.match(text, pos)
                if match is None:  # "|" outside an alternation, or a backslash escaping nothing
                    raise _NoParse
                literal.append(match.group(0))
                pos = match.end()
        flush()
        return tuple(nodes)

    def prompt(self, pos: int) -> tuple[tuple[Node, ...], int]:
        text, nodes = self.text, []
        while pos < len(text):
            char = text[pos]
            if char in "([":
                node, pos = self.construct(pos)
                nodes.append(node)
            elif char in ")]:|":
                break
            else:
                match = _PLAIN.match(text, pos)
                if match is None:
                    raise _NoParse
                nodes.append(Text(match.group(0)))
                pos = match.end()
        return tuple(nodes), pos

    def construct(self, pos: int) -> tuple[Node, int]:
        if pos in self.memo:
            cached = self.memo[pos]
            if cached is None:
                raise _NoParse
            return cached
        if self.depth >= _MAX_DEPTH:
            raise _TooDeep
        self.depth += 1
        try:
            result = self._construct(pos)
        except _NoParse:
            self.memo[pos] = None
            raise
        finally:
            self.depth -= 1
        self.memo[pos] = result
        return result

    def _peek(self, pos: int) -> str:
        return self.text[pos] if pos < len(self.text) else ""

    def _construct(self, pos: int) -> tuple[Node, int]:
        first, end = self.prompt(pos + 1)
        after = self._peek(end)
        if self.text[pos] == "(":
            if after == ")":
                return Emphasis(first, "("), end + 1
            if after == ":":
                weight, close = self.prompt(end + 1)
                if self._peek(close) == ")":
                    return Emphasis(first, "(", weight), close + 1
            raise _NoParse
        if after == "]":
            return Emphasis(first, "["), end + 1
        if after == "|":
            options = [first]
            while self._peek(end) == "|":
                option, end = self.prompt(end + 1)
                options.append(option)
            if self._peek(end) == "]":
                return Alternation(tuple(options)), end + 1
            raise _NoParse
        if after == ":":
            when = _WHEN.match(self.text, end + 1)
            if when is not None:
                return Scheduled(None, first, when.group(1)), when.end()
            second, end = self.prompt(end + 1)
            if self._peek(end) == ":":
                when = _WHEN.match(self.text, end + 1)
                if when is not None:
                    return Scheduled(first, second, when.group(1)), when.end()
        raise _NoParse


def parse_nodes(text: str) -> tuple[Node, ...]:
    """The node tree of ``text``; a text outside the grammar is a single :class:`Text`."""
    if not text:
        return ()
    try:
        return _Parser(text).top()
    except _NoParse:
        log.debug("prompt outside the editing grammar, read as plain text: %r", text[:80])
    except _TooDeep:
        log.debug("prompt nested over %d deep, read as plain text: %r", _MAX_DEPTH, text[:80])
    return (Text(text),)
