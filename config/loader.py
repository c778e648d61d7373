"""Read a stage file safely: bounded size, UTF-8 only, plain YAML (no aliases, no duplicate keys, bounded nesting).

Any input a user can produce by accident (a UTF-16 export, a pasted snippet that repeats ``database:``, a
runaway nesting, an alias bomb, a 5,000-digit number) becomes one ``InputRefused`` with a line number and a fix,
fast, before the schema sees it (config-input-unsafe).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

MAX_BYTES = 256 * 1024  # a stage file is a few KB; anything this large is a mistake (or a log pasted in)
MAX_DEPTH = 24  # the schema nests 4 levels; services and their routes add a few more
MAX_INT_DIGITS = 30  # no setting needs a bigger number; Python refuses to print ints past 4,300 digits

RULE = "config-input-unsafe"


class InputRefused(Exception):
    """The file cannot be read as a stage file; ``line`` is ``[config-input-unsafe] <where>: <what> — <fix>``."""

    def __init__(self, where: str, what: str, fix: str) -> None:
        super().__init__(f"[{RULE}] {where}: {what} — {fix}")
        self.line = str(self)


def read_stage_file(path: Path) -> Any:
    """The YAML document of ``path`` as plain Python data; raises ``InputRefused`` or ``OSError``."""
    with path.open("rb") as handle:
        data = handle.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise InputRefused(
            str(path), f"more than {MAX_BYTES // 1024} KiB", "a stage file is a few KB; keep only the stage's keys"
        )
    return parse(data, str(path))


def parse(data: bytes, source: str) -> Any:
    text = _decode(data, source)
    loader: _StageLoader | None = None
    try:
        loader = _StageLoader(text, source)  # the reader already refuses control characters here
        return loader.get_single_data()
    except InputRefused:
        raise
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        raise InputRefused(
            f"{source}, line {line}",
            f"control character #x{ord(error.character) if isinstance(error.character, str) else error.character:04x}",
            "remove it; a stage file is plain text",
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        where = f"{source}, line {mark.line + 1}, column {mark.column + 1}" if mark else source
        problem = str(getattr(error, "problem", None) or "not valid YAML")[:120]
        fix = "fix the YAML at that line (indentation, quotes, brackets)"
        raise InputRefused(where, f"invalid YAML: {problem}", fix) from None
    except RecursionError:
        raise InputRefused(source, "nesting too deep", f"a stage file nests at most {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()


def _decode(data: bytes, source: str) -> str:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise InputRefused(source, "UTF-16 text", "save the file as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        byte = data[error.start : error.start + 1].hex()
        raise InputRefused(f"{source}, line {line}", f"byte 0x{byte} is not UTF-8", "save the file as UTF-8") from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise InputRefused(f"{source}, line {line}", "a NUL character", "save the file as plain UTF-8 text")
    return text


class _StageLoader(yaml.SafeLoader):
    """SafeLoader that refuses aliases, duplicate keys, deep nesting and oversized integers."""

    def __init__(self, text: str, source: str) -> None:
        super().__init__(text)
        self.source = source
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self._peek()
            raise InputRefused(
                _where(self, event.start_mark),
                f"YAML alias *{event.anchor}",
                "aliases and merge keys (<<: *x) are not accepted; write the values out",
            )
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise InputRefused(
                    _where(self, self._peek().start_mark),
                    f"nested more than {MAX_DEPTH} levels",
                    "a stage file is a few levels deep; check the brackets and indentation",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def _peek(self) -> Any:
        return self.peek_event()  # type: ignore[no-untyped-call]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key ([a]: 1) is reported by SafeLoader below
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise InputRefused(
                    _where(self, key_node.start_mark),
                    f"key {str(key)[:40]!r} again (first on line {first})",
                    "a key may appear once per mapping; merge the two blocks (the later one would silently win)",
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        digits = sum(ch.isdigit() for ch in str(node.value))
        if digits > MAX_INT_DIGITS:
            raise InputRefused(
                _where(self, node.start_mark),
                f"a number with {digits} digits",
                "no setting needs more than a few digits; quote it if it is an identifier",
            )
        return super().construct_yaml_int(node)


_StageLoader.add_constructor("tag:yaml.org,2002:int", _StageLoader.construct_yaml_int)


def _where(loader: _StageLoader, mark: Any) -> str:
    return f"{loader.source}, line {mark.line + 1}"
