"""The one SQL-quoting helper: identifiers are quoted here; values always travel as parameters."""


def ident(*parts: str) -> str:
    """Quote a (possibly qualified) identifier: ``ident("raw", 'a"b')`` -> ``"raw"."a""b"``."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)
