"""The SQL-quoting helpers, and the one way values join a query: as named parameters."""


def ident(*parts: str) -> str:
    """Quote a (possibly qualified) identifier: ``ident("raw", 'a"b')`` -> ``"raw"."a""b"``."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in parts)


def param(params: dict, value) -> str:
    """Add ``value`` to the named parameters ``params`` under a fresh name; return its ``$name``."""
    name = f"p{len(params)}"
    while name in params:
        name += "_"
    params[name] = value
    return f"${name}"


def string(value: str) -> str:
    """A SQL string literal of ``value``, for the rare text a statement cannot take as a parameter
    (a CSV file's path or header inside a query that another statement embeds)."""
    if "\x00" in value:
        raise ValueError("text with a NUL character cannot be a SQL literal")
    return "'" + value.replace("'", "''") + "'"
