"""Phone numbers: accepted forms, masking, and a key that never shows the number."""

from datetime import date

import pytest
from hallq.shared.phone import InvalidPhoneNumber, PhoneNumber

KEY = b"k" * 32


@pytest.mark.parametrize("raw", ["13800138000", "+8613800138000", "008613800138000", "8613800138000",
                                 "138-0013-8000", " 138 0013 8000 "])
def test_accepted_forms_are_one_number(raw):
    p = PhoneNumber(raw)
    assert p == PhoneNumber("13800138000")
    assert p.masked() == "138****8000" == str(p)
    assert "13800138000" not in repr(p)


@pytest.mark.parametrize("raw", ["", "10086", "12800138000", "1380013800", "+1 415 555 0100", "abc", "138001380001"])
def test_other_numbers_are_refused_without_showing_them(raw):
    with pytest.raises(InvalidPhoneNumber) as e:
        PhoneNumber(raw)
    assert not raw.strip() or raw.strip() not in str(e.value)


def test_the_person_key_is_per_day_and_not_an_id_cards():
    from hallq.shared.personkey import person_key

    p = PhoneNumber("13800138000")
    k1 = p.person_key(KEY, date(2026, 11, 30))
    assert len(k1) == 64 and "13800138000" not in k1
    assert k1 == PhoneNumber("+8613800138000").person_key(KEY, date(2026, 11, 30))
    assert k1 != p.person_key(KEY, date(2026, 12, 1))
    assert k1 != person_key(KEY, date(2026, 11, 30), "13800138000")


def test_a_phone_number_cannot_be_pickled():
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(PhoneNumber("13800138000"))
