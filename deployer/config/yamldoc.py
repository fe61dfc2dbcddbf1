"""YAML parsed into plain values, remembering the line of every key and item.

PyYAML's safe loader drops positions and silently keeps the last of duplicate
keys; error messages that name FILE:LINE need both, so we walk the node graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

Path_ = tuple[str | int, ...]


@dataclass
class YamlDoc:
    """Parsed data plus ``lines[path] -> 1-based line`` for every key/item."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    duplicates: list[tuple[Path_, int]] = field(default_factory=list)

    def line(self, path: Path_) -> int:
        """The line of ``path`` or of its nearest located ancestor."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class YamlSyntaxError(ValueError):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def parse(text: str) -> YamlDoc:
    """Parse one YAML document; raise YamlSyntaxError with a line on bad syntax."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        problem = " ".join(p for p in (exc.context, exc.problem) if p)
        raise YamlSyntaxError(line, f"YAML syntax error: {problem}") from None
    except yaml.YAMLError as exc:  # e.g. more than one document
        raise YamlSyntaxError(1, f"YAML error: {exc}") from None
    doc = YamlDoc(data=None)
    if root is None:
        return doc
    doc.lines[()] = root.start_mark.line + 1
    doc.data = _build(root, (), doc, yaml.SafeLoader(""))
    return doc


def _build(node: yaml.Node, path: Path_, doc: YamlDoc, loader: yaml.SafeLoader) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve `<<:` merge keys
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            key = key if isinstance(key, str) else str(key)
            child = path + (key,)
            line = key_node.start_mark.line + 1
            if key in result:
                doc.duplicates.append((child, line))
            doc.lines[child] = line
            result[key] = _build(value_node, child, doc, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = path + (index,)
            doc.lines[child] = item.start_mark.line + 1
            items.append(_build(item, child, doc, loader))
        return items
    return loader.construct_object(node, deep=True)
