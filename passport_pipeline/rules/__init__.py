"""The sync rules as pure functions over DuckDB tables (DESIGN.md §2–3).

Each stage reads the previous stage's tables and the source's rules from ``passport.yaml`` and
writes its own tables, in one transaction:

1. :mod:`.schools` — schools mapping: which source schools are synced, as which Passport school;
   the report ``staging.<source>__schools_mapping``.
2. :mod:`.mapping` — attribute mapping, SIS ID prefix, schools mapping applied, one row per
   record: ``staging.<source>__<entity>__mapped``.
3. :mod:`.filters` — staff scope, emergency contacts, filter rules, include linked:
   ``staging.<source>__<entity>__filtered``.
4. :mod:`.requirements` — data requirements, formats, referential integrity, masking: the
   source's candidate roster ``staging.<source>__<entity>``.

Problems found become rows of ``sync.issues`` (:mod:`.issues`); no stage raises on bad data.
Table names are in :mod:`.tables`; attribute expressions compile to SQL in :mod:`.expressions`.
"""
