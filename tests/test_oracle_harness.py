"""The oracle's own comparison rules: what they forgive and what they do not."""
from __future__ import annotations

from tests.oracle.record import _row_by_row

TABLE = "ID   CREATED\n{a}\n{b}\n"


def test_a_row_rendered_a_second_later_is_docker_own_clock():
    want = TABLE.format(a="aa   15 seconds ago", b="bb   16 seconds ago")
    at_15 = (TABLE.format(a="aa   15 seconds ago", b="bb   15 seconds ago"), "", 0)
    at_16 = (TABLE.format(a="aa   16 seconds ago", b="bb   16 seconds ago"), "", 0)
    assert _row_by_row(want, [at_15, at_16])[0] == want


def test_a_row_no_candidate_time_printed_still_differs():
    want = TABLE.format(a="aa   15 seconds ago", b="bb   17 seconds ago")
    at_15 = (TABLE.format(a="aa   15 seconds ago", b="bb   15 seconds ago"), "", 0)
    at_16 = (TABLE.format(a="aa   16 seconds ago", b="bb   16 seconds ago"), "", 0)
    assert _row_by_row(want, [at_15, at_16])[0] != want


def test_outputs_with_another_exit_status_are_not_mixed_in():
    want = TABLE.format(a="aa   15 seconds ago", b="bb   16 seconds ago")
    at_15 = (TABLE.format(a="aa   15 seconds ago", b="bb   15 seconds ago"), "", 0)
    failed = (TABLE.format(a="aa   16 seconds ago", b="bb   16 seconds ago"), "boom", 1)
    assert _row_by_row(want, [at_15, failed])[0] != want


def test_two_cells_of_one_row_rendered_a_second_apart():
    row = "ID   {c}   {u}"
    want = "H\n" + row.format(c="15 seconds ago", u="16 seconds ago") + "\n"
    at_15 = ("H\n" + row.format(c="15 seconds ago", u="15 seconds ago") + "\n", "", 0)
    at_16 = ("H\n" + row.format(c="16 seconds ago", u="16 seconds ago") + "\n", "", 0)
    assert _row_by_row(want, [at_15, at_16])[0] == want
    wrong = "H\n" + row.format(c="15 seconds ago", u="17 seconds ago") + "\n"
    assert _row_by_row(wrong, [at_15, at_16])[0] != wrong
