"""DBC text to a cantools database, with errors that name the file and the line."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING

from ._errors import DbcError

if TYPE_CHECKING:
    from cantools.database.can import Database

__all__ = ["dbc_text", "parse_dbc"]

log = logging.getLogger(__name__)

# cantools' own messages that name a message, a signal or a DBC statement.
_MESSAGE_RE = re.compile(r"\bmessage '?\"?(\w+)")
_SIGNAL_RE = re.compile(r"\bsignals? '?\"?(\w+)")
_STATEMENT_RE = re.compile(r"\b(VAL_|SIG_VALTYPE_) (\d+) (\w+)")
# The byte order of a signal definition, which cantools reads as "0 or anything else".
_BYTE_ORDER_RE = re.compile(r"^\s*SG_\s+\w+\s*(?:\w+\s*)?:\s*\d+\s*\|\s*\d+\s*@\s*(\S)")


def dbc_text(data: bytes) -> str:
    """The text of a DBC file as cantools reads it: cp1252, with universal newlines."""
    text = data.decode("cp1252", errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_dbc(data: bytes, source: str) -> Database:
    """Parse a DBC: strictly if possible, else without cantools' layout checks.

    ``source`` names the file in errors and log messages. Every failure is a `DbcError`.
    """
    text = dbc_text(data)
    _check_byte_orders(text, source)
    # cantools raises all kinds of exceptions on malformed input, not only its own.
    try:
        return _load(text, strict=True)
    except Exception as exc:
        strict_error = exc
    position = _syntax_position(strict_error, text)
    if position is not None:
        line, column = position
        raise DbcError(
            f"invalid DBC syntax: {_excerpt(text, line, column)}",
            path=source,
            line=line,
            column=column,
        ) from strict_error
    try:
        database = _load(text, strict=False)
    except Exception as exc:
        raise DbcError(_reason(exc), path=source, line=_locate(text, str(exc))) from exc
    log.warning(
        "%s loads only without strict checks (line %s): %s",
        source,
        _locate(text, str(strict_error)) or "?",
        _reason(strict_error),
    )
    return database


def _load(text: str, *, strict: bool) -> Database:
    from cantools.database.can import Database

    database = Database(strict=strict)
    database.add_dbc_string(text)
    return database


def _check_byte_orders(text: str, source: str) -> None:
    for number, line in enumerate(text.split("\n"), start=1):
        match = _BYTE_ORDER_RE.match(line)
        if match and match.group(1) not in "01":
            raise DbcError(
                f"invalid byte order {match.group(1)!r} (0: big-endian, 1: little-endian): "
                f"'{line.strip()}'",
                path=source,
                line=number,
                column=match.start(1) + 1,
            )


def _syntax_position(error: Exception, text: str) -> tuple[int, int] | None:
    """(line, column) of a tokenizer or parser error, both counted from 1."""
    offset = getattr(error, "offset", None)
    if not isinstance(offset, int) or getattr(error, "text", None) != text:
        return None
    line_start = text.rfind("\n", 0, offset) + 1
    return text.count("\n", 0, offset) + 1, offset - line_start + 1


def _excerpt(text: str, line: int, column: int) -> str:
    lines = text.split("\n")
    if not 1 <= line <= len(lines):
        return "unexpected end of file"
    source_line = lines[line - 1]
    marked = f"{source_line[: column - 1]}>>!<<{source_line[column - 1 :]}"
    return f"'{marked.strip()}'"


def _reason(error: Exception) -> str:
    reason = str(error) or type(error).__name__
    if isinstance(error, (KeyError, IndexError, TypeError, AttributeError)):
        return f"cannot interpret the DBC ({type(error).__name__}: {reason})"
    return reason


def _locate(text: str, message: str) -> int | None:
    """The line a cantools error message is about, found from the names it mentions."""
    lines = text.split("\n")
    statement = _STATEMENT_RE.search(message)
    if statement:
        keyword, frame_id, signal = statement.groups()
        return _line_of(lines, rf"^\s*{keyword}\s+{frame_id}\s+{re.escape(signal)}\b")
    message_name = _MESSAGE_RE.search(message)
    if not message_name:
        return None
    message_line = _line_of(lines, rf"^\s*BO_\s+\d+\s+{re.escape(message_name.group(1))}\s*:")
    signal = _SIGNAL_RE.search(message)
    if message_line is None or not signal:
        return message_line
    signal_pattern = rf"^\s*SG_\s+{re.escape(signal.group(1))}\b"
    return _line_of(lines, signal_pattern, message_line) or message_line


def _line_of(lines: list[str], pattern: str, message_line: int = 0) -> int | None:
    """The first line (from 1) matching ``pattern``; within one message's block if given."""
    regex = re.compile(pattern)
    for index in range(message_line, len(lines)):
        if message_line and lines[index].lstrip().startswith("BO_ "):
            return None
        if regex.search(lines[index]):
            return index + 1
    return None
