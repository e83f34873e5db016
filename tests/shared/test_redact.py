"""Free text people type (follow-up notes, what was done) never keeps a citizen's phone or ID number in clear."""

from __future__ import annotations

import pytest
from hallq.shared.redact import redact


@pytest.mark.parametrize(("typed", "kept"), [
    ("已电话联系 13800138000，市民表示理解", "已电话联系 138****8000，市民表示理解"),
    ("回拨+86 138-0013-8000 无人接听", "回拨+86 138****8000 无人接听"),
    ("call 0086 139 1234 5678 back", "call 0086 139****5678 back"),
    ("身份证110101199003071234核对无误", "身份证110***********1234核对无误"),
    ("old id 11010119900307X ok", "old id 11010119900307X ok"),  # 16 characters: not an ID number
    ("旧证 110101900307123", "旧证 110********7123"),
    ("id 11010119900307123x.", "id 110***********123x."),
    ("办件号 2026113000001234567890 不动", "办件号 2026113000001234567890 不动"),  # a longer run of digits is not one
    ("窗口 3，等候 12 分钟，A017 号", "窗口 3，等候 12 分钟，A017 号"),
    ("固话 010-12345678", "固话 010-12345678"),
])
def test_phone_and_id_numbers_are_masked_and_nothing_else_changes(typed, kept):
    assert redact(typed) == kept
    assert redact(kept) == kept  # masking twice changes nothing
