"""Follow tokens: the unguessable part of a ticket's follow page URL (``/f/{token}``).

Every ticket (paper, SMS or scanned) links to a page that shows it live. The link must not be the number
(anyone could watch anyone's ticket, or guess the next), so it carries a token: 16 URL-safe characters of
an HMAC-SHA256 of the hall, the day and the number under the hall's follow key (96 bits). The controller
puts it on each ticket it issues (``Ticket.follow``); the follow pages find the number again with a
:class:`FollowBook`, which knows the tokens of every number the day can have. Tokens of another day or
hall do not match. Nothing personal is in a token or on the page it opens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Iterable
from datetime import date

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16}$")
MAX_NUMBER = 999


def token(key: bytes, hall: str, day: date, number: str) -> str:
    """The follow token of ticket ``number`` of ``hall`` on ``day``."""
    if len(key) < 16:
        raise ValueError("the follow key must be at least 16 bytes")
    mac = hmac.new(key, f"hallq follow v1|{hall}|{day.isoformat()}|{number}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:12]).decode("ascii")


def url(template: str, tok: str) -> str:
    """The page's address: ``template`` (``http://hall.lan:8080/f/{token}``) with the token in it."""
    return template.replace("{token}", tok)


class FollowBook:
    """Token → number for one hall and day: every number its prefixes can have (1-999), built once a day."""

    def __init__(self, key: bytes, hall: str):
        self.key, self.hall = key, hall
        self._day: date | None = None
        self._prefixes: tuple[str, ...] = ()
        self._book: dict[str, str] = {}

    def number(self, tok: str, day: date, prefixes: Iterable[str]) -> str | None:
        """The number ``tok`` stands for on ``day`` (None: not a token of this hall and day)."""
        if not TOKEN_RE.fullmatch(tok):
            return None
        prefixes = tuple(sorted(set(prefixes)))
        if day != self._day or prefixes != self._prefixes:
            self._book = {token(self.key, self.hall, day, f"{p}{n:03d}"): f"{p}{n:03d}"
                          for p in prefixes for n in range(1, MAX_NUMBER + 1)}
            self._day, self._prefixes = day, prefixes
        found = self._book.get(tok)
        return found if found is not None and hmac.compare_digest(token(self.key, self.hall, day, found), tok) else None
