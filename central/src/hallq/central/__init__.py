"""The city's central side: every hall's record in one PostgreSQL.

- :mod:`.db`: connecting, the numbered migrations (``migrations/``), monthly partitions;
- :mod:`.halls`: the halls and their credentials (``hallq central hall add``);
- :mod:`.ingest`: applying a hall's batch exactly once, in order (the rules);
- :mod:`.server`: the HTTPS ingest endpoint (``hallq central serve``);
- :mod:`.tls`: the centre's own CA and server certificate (``hallq central tls``);
- :mod:`.cli`: ``hallq central``.
"""
