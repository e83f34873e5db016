"""Bookings read from CSV and JSON: the good rows imported, each malformed row reported with its line (or
item) and skipped; nothing that looks like an ID number or a full name gets in."""

from __future__ import annotations

from datetime import date, time

import pytest
from hallq.controller.bookings import parse

CATS = {"A", "B", "C"}
KEY = "ab" * 32

CSV = f"""code,category,date,start,end,person,name
YY0001,A,2026-03-02,09:00,09:30,{KEY},张*
YY0002,B,2026-03-02,09:30,10:00,,
YY0003,Z,2026-03-02,09:30,10:00,,
YY0004,A,2026-03-32,09:30,10:00,,
YY0005,A,2026-03-02,10:00,09:30,,
YY0006,A,2026-03-02,9:00,09:30,,
YY0001,A,2026-03-02,11:00,11:30,,
YY0007,A,2026-03-02,11:00,11:30,110101199001011234,
YY0008,A,2026-03-02,11:00,11:30,,张三丰
Y!,A,2026-03-02,11:00,11:30,,
YY0009,A,2026-03-02,11:00
YY0010,C,2026-03-02,14:00,14:30,,李*四

YY0011,A,2026-03-03,09:00,09:30,,
"""


def test_csv_imports_the_good_rows_and_reports_each_bad_one_with_its_line():
    got, errors = parse(CSV, "csv", CATS)
    assert [b.code for b in got] == ["YY0001", "YY0002", "YY0010", "YY0011"]
    b = got[0]
    assert (b.category, b.day, b.start, b.end, b.person, b.name) == (
        "A", date(2026, 3, 2), time(9), time(9, 30), KEY, "张*")
    assert got[1].person is None and got[1].name is None
    where = {e.where: e.message for e in errors}
    assert list(where) == [f"line {n}" for n in (4, 5, 6, 7, 8, 9, 10, 11, 12)]
    assert "no category 'Z'" in where["line 4"]
    assert "not YYYY-MM-DD" in where["line 5"]
    assert "ends before it starts" in where["line 6"]
    assert "not HH:MM" in where["line 7"]
    assert "already booked at line 2" in where["line 8"]
    assert "never put an ID number" in where["line 9"] and "110101" not in where["line 9"]
    assert "not masked" in where["line 10"] and "三丰" not in where["line 10"]
    assert "code" in where["line 11"]
    assert "cells" in where["line 12"]


def test_a_bad_header_is_one_error_and_nothing_imported():
    got, errors = parse("code,category,day,start,end\nYY0001,A,2026-03-02,09:00,09:30\n", "csv", CATS)
    assert got == [] and len(errors) == 1
    assert errors[0].where == "line 1" and "date" in errors[0].message and "day" in errors[0].message


def test_json_list_or_object_with_items_reported_by_position():
    text = """{"bookings": [
      {"code": "YY0001", "category": "A", "date": "2026-03-02", "start": "09:00", "end": "09:30"},
      {"code": "YY0002", "category": "A", "date": "2026-03-02", "start": "09:00"},
      "nonsense",
      {"code": "YY0003", "category": "A", "date": "2026-03-02", "start": "09:00", "end": "09:30", "id": "x"},
      {"code": "YY0004", "category": "B", "date": "2026-03-02", "start": "09:00", "end": "09:30", "person": 12},
      {"code": "YY0005", "category": "B", "date": "2026-03-02", "start": "10:00", "end": "10:30", "name": "王*"}
    ]}"""
    got, errors = parse(text, "json", CATS)
    assert [b.code for b in got] == ["YY0001", "YY0005"]
    assert [e.where for e in errors] == ["item 2", "item 3", "item 4", "item 5"]
    assert "`end` is missing" in errors[0].message and "unknown keys id" in errors[2].message


@pytest.mark.parametrize("text", ["", "[", "{}", "42", '{"bookings": 3}'])
def test_json_that_is_not_a_list_of_bookings(text):
    got, errors = parse(text, "json", CATS)
    assert got == [] and len(errors) == 1


def test_garbage_is_reported_not_raised():
    got, errors = parse("\x00\x01,\n\"unterminated\n", "csv", CATS)
    assert got == [] and errors
    with pytest.raises(ValueError):
        parse("", "xml", CATS)


def test_a_status_column_marks_cancelled_bookings():
    text = """code,category,date,start,end,status
YY0001,A,2026-03-02,09:00,09:30,booked
YY0002,A,2026-03-02,09:00,09:30,cancelled
YY0003,A,2026-03-02,09:00,09:30,已取消
YY0004,A,2026-03-02,09:00,09:30,
YY0005,A,2026-03-02,09:00,09:30,maybe
"""
    got, errors = parse(text, "csv", CATS)
    assert [(b.code, b.cancelled) for b in got] == [
        ("YY0001", False), ("YY0002", True), ("YY0003", True), ("YY0004", False)]
    assert [e.where for e in errors] == ["line 6"] and "booked or cancelled" in errors[0].message
    got, errors = parse('[{"code": "YY0001", "category": "A", "date": "2026-03-02", "start": "09:00", '
                        '"end": "09:30", "status": "canceled"}]', "json", CATS)
    assert [b.cancelled for b in got] == [True] and errors == []
