"""The test oracle: source records normalized to canonical records in plain Python.

Extraction normalizes in DuckDB SQL, from one field map per standard
(:mod:`passport_pipeline.warehouse.normalize_sql_oneroster`, ``normalize_sql_sms``). These
independent Python normalizers say the same thing another way; the landing tests land every
entity both ways and compare the tables, so a slip in either shows.
"""
