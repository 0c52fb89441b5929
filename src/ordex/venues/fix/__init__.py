"""FIX 4.4 over TCP (QuickFIX): the simulated venue as a process (``server``, ``ordex venue``)
and ordex's adapter to it or any FIX 4.4 venue speaking the same messages (``adapter.FixVenue``).

``messages`` maps the Venue protocol's types to FIX tags; ``session`` builds QuickFIX's session
settings in code (no data dictionary, persistent FileStore).
"""
