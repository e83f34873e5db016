"""The PDU codec against an independent one (python-gsmmodem-new) and against hand-made PDUs."""

import pytest
from gsmmodem.pdu import decodeSmsPdu
from hallq.sms import pdu
from modem_emulator import deliver_pdu


def _decoded(p):
    d = decodeSmsPdu(p.hex)
    return d


def test_short_chinese_text_is_one_ucs2_pdu():
    [p] = pdu.submit_pdus("+8613800138000", "请A023号到3号窗口办理。", ref=5)
    d = _decoded(p)
    assert d["type"] == "SMS-SUBMIT"
    assert d["number"] == "+8613800138000"
    assert d["text"] == "请A023号到3号窗口办理。"
    assert not d.get("udh")
    assert p.tpdu_length == len(p.hex) // 2 - 1


def test_long_text_is_split_with_the_concatenation_header():
    text = "【示范县政务服务中心】您的号码A023（社保医保），前面4人，约8–13分钟。前面剩3人时和叫号时短信通知您。回复“查”看进度，“取消”取消。"
    parts = pdu.submit_pdus("+8613800138000", text, ref=77)
    assert len(parts) == 2
    joined = ""
    for i, p in enumerate(parts, 1):
        d = _decoded(p)
        [c] = [u for u in d["udh"] if hasattr(u, "parts")]
        assert (c.reference, c.parts, c.number) == (77, 2, i)
        joined += d["text"]
    assert joined == text


def test_split_never_cuts_a_surrogate_pair():
    text = "😀" * 40  # 80 UTF-16 units
    parts = pdu.split_ucs2(text)
    assert "".join(parts) == text
    assert all(len(p.encode("utf-16-be")) // 2 <= pdu.UCS2_PART for p in parts)


def test_seventy_characters_fit_one_sms_and_seventy_one_do_not():
    assert len(pdu.submit_pdus("10086", "字" * 70, 1)) == 1
    assert len(pdu.submit_pdus("10086", "字" * 71, 1)) == 2


@pytest.mark.parametrize("text", ["A", "qx", "Hello {world} [1] €5", "社保", "取消", "查"])
def test_deliver_round_trip(text):
    d = pdu.decode_deliver(deliver_pdu("+8613912345678", text))
    assert d.sender == "+8613912345678"
    assert d.text == text
    assert d.concat is None
    assert d.sent_at is not None


@pytest.mark.parametrize("text", ["part one of a long english text", "长短信的第一部分"])
def test_deliver_with_concatenation_header(text):
    d = pdu.decode_deliver(deliver_pdu("+8613912345678", text, concat=(9, 3, 2)))
    assert d.text == text
    assert d.concat == pdu.Concat(9, 3, 2)


def test_a_known_pdu_from_a_real_modem():
    # "hellohello" from +27838890231, GSM 7-bit (a textbook example)
    d = pdu.decode_deliver("07917283010010F5040BC87238880900F10000993092516195800AE8329BFD4697D9EC37")
    assert d.text == "hellohello"
    assert d.sender == "27838890001"  # a national number (type of address C8): no "+"
    assert not d.alphanumeric
    assert d.concat is None


@pytest.mark.parametrize("bad", ["", "zz", "00", "0791727301001", "07917283010010F5050BC87238880900F10000"])
def test_garbage_pdus_raise_pdu_error(bad):
    with pytest.raises(pdu.PduError):
        pdu.decode_deliver(bad)
