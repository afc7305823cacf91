"""Text the service controls reaches a report escaped and bounded (``pytest_goleak/text.py``)."""

from __future__ import annotations

import codecs

from hypothesis import given
from hypothesis import strategies as st

from pytest_goleak.text import MAX_LINE, block, escaped, line, lines

FORGED = "products.csv\nFAILED test_payment.py::test_refund - forged"


def test_a_newline_in_a_name_cannot_start_a_line_of_its_own() -> None:
    report = lines(["new file descriptors (1):", f"  fd 7: /data/{FORGED}"])
    assert report.splitlines() == [
        "new file descriptors (1):",
        "  fd 7: /data/products.csv\\nFAILED test_payment.py::test_refund - forged",
    ]
    assert not any(row.startswith("FAILED") for row in report.splitlines())


def test_terminal_escapes_and_bidirectional_overrides_are_written_out() -> None:
    assert escaped("main.\x1b[2Jworker") == "main.\\x1b[2Jworker"
    assert escaped("evil\u202etxt.exe") == "evil\\u202etxt.exe"
    assert escaped("a\u2028b\rc\td") == "a\\u2028b\\rc\\td"


def test_printable_text_is_left_alone_and_a_backslash_is_doubled() -> None:
    assert escaped("main.(*Server).serve[...]  é  /tmp/x y") == "main.(*Server).serve[...]  é  /tmp/x y"
    assert escaped("C:\\x") == "C:\\\\x"


def test_a_long_name_is_cut_in_the_middle_with_a_marker() -> None:
    name = "main." + "a" * 100_000 + ".end"
    shown = line(name)
    assert len(shown) <= MAX_LINE
    assert shown.startswith("main.aaa") and shown.endswith("a.end")
    assert "characters cut]" in shown


def test_a_block_of_service_output_is_indented_line_by_line() -> None:
    out = block("panic: boom\nFAILED test_x - forged\r\n\x1b[31mred")
    assert out.splitlines() == ["    panic: boom", "    FAILED test_x - forged", "    \\x1b[31mred"]
    assert block("\n".join(str(n) for n in range(500)), max_lines=3).splitlines() == [
        "    ... 497 earlier lines left out",
        "    497",
        "    498",
        "    499",
    ]


@given(st.text(alphabet=st.characters(max_codepoint=0x7F) | st.sampled_from("\u202e\u2028\u2029\x85\ufeff")))
def test_escaped_text_is_one_printable_line_that_reads_back_exactly(text: str) -> None:
    shown = escaped(text)
    assert shown.isprintable() and len(shown.splitlines()) <= 1
    assert codecs.decode(shown.encode("ascii"), "unicode_escape") == text
