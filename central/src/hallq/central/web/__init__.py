"""The city dashboard (``hallq central web``): every hall live, drill-down, cross-hall reports, follow-ups.

Modules: :mod:`.live` (all halls' retained topics), :mod:`.figures` (daily roll-up, reports),
:mod:`.data` (reads of the central record), :mod:`.app` (routes), :mod:`.server` (wiring), :mod:`.cli`.
"""
