"""Follow tokens: unguessable, per hall and day, and found again by the follow pages' book."""

from datetime import date

from hallq.shared.follow import TOKEN_RE, FollowBook, token, url

KEY = bytes(range(32))
DAY = date(2026, 11, 30)


def test_a_token_is_16_url_safe_characters_and_not_the_number():
    t = token(KEY, "demo", DAY, "A023")
    assert TOKEN_RE.fullmatch(t) and "A023" not in t
    assert t == token(KEY, "demo", DAY, "A023")  # the controller and the pages agree
    others = {token(KEY, "demo", DAY, "A024"), token(KEY, "demo", date(2026, 12, 1), "A023"),
              token(KEY, "other", DAY, "A023"), token(bytes(32), "demo", DAY, "A023")}
    assert t not in others and len(others) == 4


def test_the_book_finds_todays_numbers_only():
    book = FollowBook(KEY, "demo")
    assert book.number(token(KEY, "demo", DAY, "B107"), DAY, ["A", "B"]) == "B107"
    assert book.number(token(KEY, "demo", DAY, "B107"), date(2026, 12, 1), ["A", "B"]) is None
    assert book.number(token(KEY, "demo", DAY, "C001"), DAY, ["A", "B"]) is None
    assert book.number("not-a-token", DAY, ["A"]) is None
    assert book.number("A" * 16, DAY, ["A"]) is None


def test_url():
    assert url("http://10.0.0.2:8080/f/{token}", "abc") == "http://10.0.0.2:8080/f/abc"
