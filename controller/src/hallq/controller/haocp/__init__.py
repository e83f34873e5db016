"""The 好差评 link: every rating goes to the province's good/bad review system, exactly once.

Three parts, one job each:

- :mod:`.record` (pure): a rating as the province's JSON record; the satisfaction code schemes.
- :mod:`.outbox` (SQLite): the ``haocp_outbox`` rows. The core decides the upload with the rating
  (:class:`~hallq.controller.core.UploadRec`, the finished record) and the storage writes both in the SAME
  transaction: a rating is never stored without its upload, nor uploaded without being stored.
- :mod:`.uploader` (HTTP, a thread of the controller): POSTs the pending rows oldest first. Transient
  failures (connection refused, time-outs, HTTP 408, 429 and 5xx) are retried with exponential backoff
  (tenacity); a row is marked ``sent`` only after a 2xx answer, ``rejected`` (and logged) after another
  4xx. Rows stay in SQLite, so a restart goes on where it stopped.

``[haocp]`` in the hall config (:class:`~hallq.controller.config.HaocpSection`): ``url`` (left out: nothing
is uploaded), ``area_code``, ``scheme``, ``channel``, time-outs and retries, and the follow-up rules
(``followup_days``, the hall's ``holidays`` and ``workdays``).

Exactly once: every record carries an idempotency key (``idempotencyKey`` in the body, and the
``Idempotency-Key`` header) made of the hall, the day and the ticket, which a hall rates once a day. A POST
whose answer was lost is sent again with the same key, and the receiving side keeps one.

This package's ``__init__`` imports nothing, so the core can use the pure :mod:`.record` alone.
"""
