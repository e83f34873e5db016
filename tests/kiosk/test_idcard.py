from __future__ import annotations

from datetime import date

import pytest
from hallq.kiosk.idcard import IdNumber, InvalidIdNumber, age_on, check_digit, identity, inspect_number, mask
from kiosk_kit import make_id

# A number from GB 11643's own example.
GB_EXAMPLE = "11010519491231002X"


@pytest.mark.parametrize(
    ("first17", "check"),
    [("11010519491231002", "X"), ("44052418800101001", "4"), ("11010120000101001", "0"), ("11010120000101002", "9")],
)
def test_check_digit(first17, check):
    assert check_digit(first17) == check


def test_the_standard_example_is_valid_and_hides_itself():
    n = IdNumber(GB_EXAMPLE)
    assert n.birth_date == date(1949, 12, 31)
    assert n.masked() == "110***********002X"
    assert GB_EXAMPLE not in str(n) and GB_EXAMPLE not in repr(n) and GB_EXAMPLE not in f"{n}"
    assert IdNumber(GB_EXAMPLE.lower()) == n


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("11010519491231002", "17 digits"),
        ("110105194912310021", "check digit"),
        ("1101051949123100X2", "17 digits"),
        ("11010519490231002" + check_digit("11010519490231002"), "does not exist"),  # 31 February
        ("11010518000101002" + check_digit("11010518000101002"), "not possible"),
        ("", "17 digits"),
    ],
)
def test_invalid_numbers_are_refused_without_showing_them(value, why):
    with pytest.raises(InvalidIdNumber) as exc:
        IdNumber(value)
    assert why in str(exc.value)
    if value:
        assert value not in str(exc.value)


def test_a_birth_date_in_the_future_is_refused():
    n = make_id(date(2030, 1, 1))
    with pytest.raises(InvalidIdNumber):
        IdNumber(n, today=date(2026, 11, 23))


@pytest.mark.parametrize(
    ("birth", "today", "age"),
    [(date(1961, 11, 23), date(2026, 11, 23), 65), (date(1961, 11, 24), date(2026, 11, 23), 64),
     (date(2000, 2, 29), date(2026, 2, 28), 25), (date(2000, 2, 29), date(2026, 3, 1), 26)],
)
def test_age(birth, today, age):
    assert age_on(birth, today) == age
    assert IdNumber(make_id(birth)).age_on(today) == age


def test_mask():
    assert mask("123456789012345678") == "123***********5678"
    assert mask("1234567") == "*******"


def test_person_key_is_an_hmac_under_the_hall_key():
    n = IdNumber(GB_EXAMPLE)
    k1 = n.person_key(b"k" * 32)
    assert len(k1) == 64 and all(c in "0123456789abcdef" for c in k1)
    assert k1 == IdNumber(GB_EXAMPLE).person_key(b"k" * 32)
    assert k1 != n.person_key(b"j" * 32)
    assert GB_EXAMPLE not in k1
    with pytest.raises(ValueError):
        n.person_key(b"short")
    ident = identity(n, b"k" * 32, "ga467")
    assert ident.person == k1 and ident.masked == "110***********002X"
    assert GB_EXAMPLE not in repr(ident)


def test_an_id_number_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(IdNumber(GB_EXAMPLE))


def test_inspection_for_technicians():
    ok = inspect_number(GB_EXAMPLE)
    assert (ok.masked, ok.birth_date, ok.check_ok, ok.problem) == ("110***********002X", date(1949, 12, 31), True, None)
    bad = inspect_number("110105194912310021")
    assert bad.check_ok is False and bad.birth_date == date(1949, 12, 31) and "check digit" in bad.problem


def test_load_secret_hex_or_raw(tmp_path):
    from hallq.kiosk.idcard import load_secret

    hexfile = tmp_path / "hex.key"
    hexfile.write_text("00ff" * 16 + "\n")
    assert load_secret(hexfile) == bytes.fromhex("00ff" * 16)
    raw = tmp_path / "raw.key"
    raw.write_bytes(b"a raw key of enough bytes")
    assert load_secret(raw) == b"a raw key of enough bytes"
    short = tmp_path / "short.key"
    short.write_text("abcd")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        load_secret(short)
    with pytest.raises(ValueError, match="cannot read"):
        load_secret(tmp_path / "missing.key")
