"""The embedded Skyward: a synthetic district generator and a server that speaks its APIs.

``district`` generates a realistic district into a DuckDB store (``store``), ``evolve`` moves it
forward a day, and ``server`` serves it as OneRoster 1.1/1.2 (``oneroster``) and the SMS 2.0
native API (``sms``), with OAuth (``auth``), faults (``faults``) and admin endpoints (``admin``).
"""
