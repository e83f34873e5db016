"""Issue 13: every folder a role makes for itself is said in the log, never made silently (the default
``/var/lib/hallq/...`` paths included), and a folder that cannot be made is one line naming it."""

from __future__ import annotations

import logging

import pytest
from hallq.shared.paths import PathError, ensure_dir, ensure_parent


def made(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("made the folder ")]


def test_each_folder_made_is_logged_once_with_its_purpose(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="hallq.shared.paths"):
        ensure_parent(tmp_path / "a" / "b" / "hall.db", "the hall's record")
        ensure_dir(tmp_path / "a" / "b", "the hall's record")  # there already: nothing to say
    assert made(caplog) == [f"made the folder {tmp_path / 'a'} (for the hall's record)",
                            f"made the folder {tmp_path / 'a' / 'b'} (for the hall's record)"]


def test_a_folder_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(PathError, match=r"cannot make the folder .*file/sub for screenshots: "):
        ensure_dir(tmp_path / "file" / "sub", "screenshots")


def test_the_roles_records_say_the_folders_they_make(tmp_path, caplog):
    """The dashboard's accounts and the SMS gateway's record (default ``/var/lib/hallq/...``) once made their
    folders without a word, like the controller's ``--db`` had."""
    from hallq.controller.db import connect
    from hallq.dashboard.accounts import Accounts
    from hallq.sms.store import Store

    with caplog.at_level(logging.INFO, logger="hallq.shared.paths"):
        connect(tmp_path / "ctl" / "hall.db").close()  # `hallq controller --db /new/dir/hall.db`
        Accounts(tmp_path / "dash" / "dashboard.db")
        Store(tmp_path / "sms" / "sms.db", b"k" * 32)
    assert made(caplog) == [f"made the folder {tmp_path / 'ctl'} (for the hall's record)",
                            f"made the folder {tmp_path / 'dash'} (for the dashboard's accounts)",
                            f"made the folder {tmp_path / 'sms'} (for the SMS gateway's record)"]
