"""YAML parsed into plain values, remembering the line of every key and item.

PyYAML's safe loader drops positions and silently keeps the last of duplicate
keys; error messages that name FILE:LINE need both, so we walk the node graph.

The walk is also where hostile YAML is stopped, each case as FILE:LINE:
- nesting deeper than ``MAX_DEPTH`` (the composer recurses: 3,000 levels were a
  RecursionError), aliases that refer to themselves, and more than
  ``MAX_NODES`` values after alias expansion (a 700-byte "billion laughs" grew
  to 847 MB);
- every tag (``!!python/object``, ``!vault``, even ``!!str``): an inventory is
  plain data, and a tag is either code or a meaning deployer does not know;
- ``<<`` merges of anything but mappings, keys that are not scalars;
- plain scalars that YAML 1.1 reads as something other than their text
  (``0640`` is 416, ``NO`` is false, ``1.10`` is 1.1, ``1:30`` is 90, dates):
  refused with "quote it", so a value is always exactly what the file says.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]

MAX_DEPTH = 64
MAX_NODES = 100_000
MAX_DIGITS = 20
TAG = "tag:yaml.org,2002:"
# Plain scalars whose YAML reading and text agree: kept as the number or bool.
CANONICAL_INT = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
CANONICAL_FLOAT = re.compile(r"-?(0|[1-9][0-9]*)\.[0-9]+", re.ASCII)
CANONICAL_BOOL = ("true", "false", "True", "False", "TRUE", "FALSE")


def printable(text: str) -> str:
    """``text`` with every unprintable character escaped, so a key cannot forge a line."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def key_path(path: Path_) -> str:
    """``groups/web/hosts/web1`` for an error message, control characters escaped."""
    return "/".join(printable(str(p)) for p in path)


def line_of(text: str, index: int) -> int:
    """The 1-based line of character ``index`` (a line ends at ``\\n`` only)."""
    return text.count("\n", 0, index) + 1


@dataclass
class YamlDoc:
    """Parsed data plus ``lines[path] -> 1-based line`` for every key/item.

    ``texts[path]`` is the source text of every scalar that YAML read as a
    number or a bool, for fields that take a string exactly as written.
    """

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicates: list[tuple[Path_, int]] = field(default_factory=list)
    texts: dict[Path_, str] = field(default_factory=dict)

    def line(self, path: Path_) -> int:
        """The line of ``path`` or of its nearest located ancestor."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def text(self, path: Path_, value: Any) -> Any:
        """What the file says at ``path``: the scalar's text for a number or bool."""
        return self.texts.get(path, value)


class YamlSyntaxError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


class _Loader(yaml.SafeLoader):
    """SafeLoader's composer with a depth limit and no tags."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if not isinstance(event, yaml.AliasEvent) and getattr(event, "tag", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, f"tags are not allowed (found {printable(event.tag)!r}): "
                "an inventory is plain data; quote the value instead", event.start_mark)
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise yaml.composer.ComposerError(
                None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


# YAML counts these as line breaks, editors and ``grep -n`` do not: every line after
# one would be misreported, and a value could hide a second line in one.
FOREIGN_BREAKS = re.compile("[\x85\u2028\u2029]|\r(?!\n)")


def parse(text: str) -> YamlDoc:
    """Parse one YAML document; raise YamlSyntaxError with a line on bad or hostile input."""
    foreign = FOREIGN_BREAKS.search(text)
    if foreign:
        raise YamlSyntaxError(line_of(text, foreign.start()),
                              f"character {_codepoint(foreign.group())} (a line break only for YAML) is not allowed")
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlSyntaxError(line, f"YAML syntax error: {problem}") from None
    except yaml.reader.ReaderError as exc:  # NUL and other characters YAML forbids
        raise YamlSyntaxError(line_of(text, exc.position),
                              f"character {_codepoint(exc.character)} is not allowed in YAML") from None
    except yaml.YAMLError as exc:
        raise YamlSyntaxError(1, f"YAML error: {printable(str(exc))}") from None
    except RecursionError:
        raise YamlSyntaxError(1, "YAML nested too deeply") from None
    doc = YamlDoc(data=None)
    if root is None:
        return doc
    doc.lines[()] = root.start_mark.line + 1
    doc.data = _Builder(doc).build(root, ())
    return doc


def _codepoint(char: Any) -> str:
    if isinstance(char, int):  # the reader reports the code point
        return f"U+{char:04X}"
    return f"U+{ord(char):04X}" if isinstance(char, str) and len(char) == 1 else repr(char)


def _fail(node: yaml.Node, message: str) -> YamlSyntaxError:
    return YamlSyntaxError(node.start_mark.line + 1, message)


class _Builder:
    """Node graph -> plain values, counting every value an alias expands to."""

    def __init__(self, doc: YamlDoc) -> None:
        self.doc = doc
        self.nodes = 0
        self.active: set[int] = set()  # nodes being built: met again means a cycle
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path_) -> Any:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise YamlSyntaxError(self.doc.line(path), f"more than {MAX_NODES} values once aliases are expanded (an alias bomb?)")
        if id(node) in self.active:
            raise YamlSyntaxError(self.doc.line(path), "an alias refers to the node that contains it (recursive alias)")
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.MappingNode):
                return self.mapping(node, path)
            if isinstance(node, yaml.SequenceNode):
                items = []
                for index, item in enumerate(node.value):
                    self.doc.lines[path + (index,)] = item.start_mark.line + 1
                    items.append(self.build(item, path + (index,)))
                return items
            return self.scalar(node, path)
        finally:
            self.active.discard(id(node))

    def mapping(self, node: yaml.MappingNode, path: Path_) -> dict[str, Any]:
        """Merged keys (``<<``) first, so the mapping's own keys and lines win."""
        result: dict[str, Any] = {}
        own = [(k, v) for k, v in node.value if k.tag != TAG + "merge"]
        for key_node, value_node in node.value:
            if key_node.tag == TAG + "merge":
                for source in self.merge_sources(value_node):
                    for key, value in self.build(source, path).items():
                        result.setdefault(key, value)
        seen: set[str] = set()
        for key_node, value_node in own:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _fail(key_node, "a key must be a plain name, not a list or a mapping")
            key = key_node.value  # the text, as written: `NO:` is the key 'NO'
            self._check_text(key_node, key)
            child = path + (key,)
            line = key_node.start_mark.line + 1
            if key in seen:
                self.doc.duplicates.append((child, line))
            seen.add(key)
            self.doc.lines[child] = line
            result[key] = self.build(value_node, child)
        return result

    def merge_sources(self, node: yaml.Node) -> list[yaml.MappingNode]:
        """``<<: *a`` or ``<<: [*a, *b]`` (the first listed wins); anything else is an error."""
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        if not sources or not all(isinstance(s, yaml.MappingNode) for s in sources):
            raise _fail(node, "'<<' merges a mapping or a list of mappings (an anchored {...}), got something else")
        return list(sources)

    def scalar(self, node: yaml.ScalarNode, path: Path_) -> Any:
        text = node.value
        self._check_text(node, text)
        kind = node.tag[len(TAG):] if node.tag.startswith(TAG) else node.tag
        if kind == "str":
            return text
        if kind == "null":
            return None
        if kind in ("int", "float") and len(text) > MAX_DIGITS:
            raise _fail(node, f"a number of {len(text)} characters: no setting takes one (quote it if it is text)")
        agrees = {
            "int": CANONICAL_INT.fullmatch(text),
            "float": CANONICAL_FLOAT.fullmatch(text) and repr(float(text)) == text,
            "bool": text in CANONICAL_BOOL,
        }.get(kind)
        if not agrees:
            reading = self._reading(node, kind)
            raise _fail(node, f"{printable(text)} reads as {reading} in YAML 1.1, not as the text you wrote: "
                              f"quote it: '{printable(text)}'")
        self.doc.texts[path] = text
        return self.constructor.construct_object(node)

    def _reading(self, node: yaml.ScalarNode, kind: str) -> str:
        try:
            return f"the {kind} {self.constructor.construct_object(node)!r}"
        except (ValueError, OverflowError, yaml.YAMLError):
            return f"a {kind} (and an invalid one)"

    @staticmethod
    def _check_text(node: yaml.ScalarNode, text: str) -> None:
        """No lone surrogates (a ``"\\ud800"`` escape): no encoder can write them."""
        for ch in text:
            if unicodedata.category(ch) == "Cs":
                raise _fail(node, f"character U+{ord(ch):04X} (a lone surrogate) is not allowed")
