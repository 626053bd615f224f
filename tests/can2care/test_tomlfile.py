"""The shared TOML parse: documents as tomllib reads them, syntax errors with their position."""

from __future__ import annotations

import pytest

from can2care import tomlfile


def test_a_document_reads_as_tomllib_reads_it() -> None:
    assert tomlfile.loads('a = 1\n[b]\nc = "x"\n') == {"a": 1, "b": {"c": "x"}}


def test_a_syntax_error_carries_line_and_column_out_of_the_message() -> None:
    with pytest.raises(tomlfile.TomlSyntaxError) as info:
        tomlfile.loads('a = 1\nb = "open\n')
    error = info.value
    assert (error.line, error.column) == (2, 10)  # the end of the unclosed string
    assert error.reason == "Illegal character '\\n'"
    assert isinstance(error, ValueError)
