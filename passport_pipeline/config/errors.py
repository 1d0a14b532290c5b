"""Problems in ``passport.yaml``, in words a district admin reads: one line per problem.

:class:`ConfigError` is the one exception of the config package. :func:`problem_lines` turns a
pydantic ``ValidationError`` into lines that each name the key path (a source by its name:
``sources[1] (sis_main).http.page_size``), the line of the file, the bad value and what is
allowed, e.g. ``unknown key 'pagesize': did you mean 'page_size'?``. Values under
``credentials`` and of keys that look secret are never shown, and a URL's ``user:password@``
is masked, so a message is always safe to log.

Models raise their own rules as :func:`problem` errors (type ``passport``) whose message is
already complete; :func:`fail` raises several at once, each at its own key.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

Loc = tuple[str | int, ...]


class ConfigError(Exception):
    """The configuration cannot be used: ``problems`` holds one readable line per problem."""

    def __init__(self, summary: str, problems: Sequence[str] = ()) -> None:
        self.summary = summary
        self.problems = list(problems)
        lines = [summary, *(f"  - {line}" for line in self.problems)]
        super().__init__("\n".join(lines))


def problem(message: str) -> PydanticCustomError:
    """A rule of ours broken, in a complete sentence (shown after the key path)."""
    return PydanticCustomError("passport", message)


def fail(model: str, problems: Sequence[tuple[Loc, str, Any]], keep: Sequence[Mapping] = ()) -> None:
    """Raise every ``(loc, message, value)`` at once, after the pydantic errors in ``keep``.

    Raised inside a validator, the locs are relative: pydantic prefixes the model's own.
    """
    details = [
        InitErrorDetails(type=PydanticCustomError(e["type"], e["msg"], e.get("ctx")), loc=e["loc"], input=e.get("input"))
        for e in keep
    ]
    details += [InitErrorDetails(type=problem(message), loc=loc, input=value) for loc, message, value in problems]
    raise ValidationError.from_exception_data(model, details)


def shown(value: Any) -> str:
    """A value as it appears in a message: quoted text, short, with URL credentials masked."""
    if isinstance(value, str):
        text = repr(re.sub(r"://[^/@\s]+@", "://***@", value))
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "empty"
    else:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def one_of(allowed: Sequence[str], given: Any = None) -> str:
    """``must be one of a, b, c`` plus ``(did you mean 'b'?)`` when the given value is close."""
    text = "must be one of " + ", ".join(allowed)
    if isinstance(given, str | int | float):
        close = difflib.get_close_matches(str(given), list(allowed), n=1, cutoff=0.6)
        if close:
            text += f" (did you mean '{close[0]}'?)"
    return text


def key_path(path: Sequence[str | int], data: Any) -> str:
    """``sources[1] (sis_main).http.page_size``: list items are named by their ``name``/``app``."""
    text, node = "", data
    for part in path:
        if isinstance(part, int):
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            label = _get(node, "name") if isinstance(_get(node, "name"), str) else _get(node, "app")
            text += f"[{part}]" + (f" ({label})" if isinstance(label, str) else "")
        else:
            node = _get(node, part)
            text += f".{part}" if text else str(part)
    return text


def problem_lines(
    error: ValidationError, root: type[BaseModel], data: Any, lines: Mapping[tuple, int]
) -> list[str]:
    """One line per pydantic error, in file order: where (key path, line), the value, what is allowed.

    ``lines`` maps data paths (keys and list indexes) to their line in the file; a missing key
    is placed at the nearest enclosing one.
    """
    found: dict[str, int] = {}
    for detail in error.errors():
        path, annotation, parent, field = _locate(root, detail["loc"], data)
        where, what = _describe(detail, path, annotation, parent, field)
        line = next((lines[key] for n in range(len(path), 0, -1) if (key := tuple(path[:n])) in lines), None)
        text = f"{key_path(where, data) or 'top level'}{f' (line {line})' if line else ''}: {what}"
        found.setdefault(text, line or 0)
    return sorted(found, key=found.get)


def _describe(detail, path, annotation, parent, field) -> tuple[list, str]:
    """(the path the message is about, what is wrong) for one pydantic error."""
    kind, value, ctx = detail["type"], detail.get("input"), detail.get("ctx") or {}
    value_text = "(value hidden)" if _sensitive(path) else shown(value)
    if kind == "passport":
        return path, detail["msg"]
    if kind == "extra_forbidden":
        return path[:-1], _unknown_key(str(path[-1]), parent)
    if kind == "missing":
        return path, "missing: this setting is required"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = [_tag(m) for m in _union_models(annotation)]
        given = _get(value, "app")
        told = "missing" if kind == "union_tag_not_found" else f"{shown(given)} is not allowed"
        return [*path, "app"], f"{told}: {one_of(tags, given)}"
    if kind == "literal_error":
        allowed = re.findall(r"'([^']*)'", ctx.get("expected", ""))
        return path, f"{value_text} is not allowed: {one_of(allowed, value)}"
    if kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return path, f"{value_text} is out of range: {_bounds(field, ctx)}"
    if kind in _KINDS:
        return path, f"{value_text} is not {_KINDS[kind]}"
    if kind == "too_short":
        return path, f"is empty: at least {ctx.get('min_length', 1)} needed"
    message = re.sub(r"^(Value error, |Input should be )", "", detail["msg"])
    return path, f"{value_text}: {message}"


_KINDS = {
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "int_type": "a whole number",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "text",
    "list_type": "a list (lines starting with '- ')",
    "tuple_type": "a list (lines starting with '- ')",
    "dict_type": "a mapping (key: value lines)",
    "model_type": "a section of settings (key: value lines)",
    "model_attributes_type": "a section of settings (key: value lines)",
    "path_type": "a file path",
}


def _unknown_key(key: str, parent: type[BaseModel] | None) -> str:
    text = f"unknown key '{key}'"
    if parent is None:
        return text
    allowed = list(parent.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f"{text}: did you mean '{close[0]}'?"
    for name, field in parent.model_fields.items():
        nested = _unwrap(field.annotation)
        if isinstance(nested, type) and issubclass(nested, BaseModel) and key in nested.model_fields:
            return f"{text}: it belongs under '{name}' ({name}.{key})"
    return f"{text}: allowed keys are {', '.join(allowed)}"


def _bounds(field, ctx: Mapping) -> str:
    """The whole allowed range of a number, from the field's constraints (or the error's)."""
    found = {k: v for k, v in ctx.items() if k in _BOUND_WORDS}
    for constraint in field.metadata if field is not None else []:
        found.update({k: v for k in _BOUND_WORDS if (v := getattr(constraint, k, None)) is not None})
    if "ge" in found and "le" in found:
        return f"must be from {found['ge']} to {found['le']}"
    return "must be " + " and ".join(f"{_BOUND_WORDS[k]} {v}" for k, v in found.items())


_BOUND_WORDS = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}


def _sensitive(path: Sequence[str | int]) -> bool:
    return any(
        isinstance(p, str) and (p == "credentials" or "secret" in p or "password" in p) for p in path
    )


def _locate(root: type[BaseModel], loc: Loc, data: Any):
    """Follow a pydantic loc through the models: (data path, annotation, parent model, field).

    Discriminated-union tags in the loc (``sources.0.skyward_sms...``) are not keys of the
    file, so they are dropped from the data path.
    """
    annotation: Any = root
    parent, field, path, node = None, None, [], data
    for part in loc:
        annotation = _unwrap(annotation)
        members = _union_models(annotation)
        if members:
            tags = {_tag(m): m for m in members}
            if part in tags:
                annotation = tags[part]
                continue
            annotation = tags.get(_get(node, "app"), members[0])
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            parent, field = annotation, annotation.model_fields.get(str(part))
            annotation = field.annotation if field else None
        elif get_origin(annotation) in (list, tuple, dict):
            annotation, field = get_args(annotation)[-1], None
        else:
            annotation, field = None, None
        path.append(part)
        node = _get(node, part)
    return path, _unwrap(annotation), parent, field


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``| None`` to the type that matters."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _union_models(annotation: Any) -> list[type[BaseModel]]:
    if get_origin(annotation) not in (Union, types.UnionType):
        return []
    args = get_args(annotation)
    if all(isinstance(a, type) and issubclass(a, BaseModel) and "app" in a.model_fields for a in args):
        return list(args)
    return []


def _tag(model: type[BaseModel]) -> str:
    return get_args(model.model_fields["app"].annotation)[0]


def _get(node: Any, key: Any) -> Any:
    if isinstance(node, Mapping):
        return node.get(key)
    if isinstance(node, list):
        return node[key] if isinstance(key, int) and 0 <= key < len(node) else None
    return getattr(node, key, None) if isinstance(key, str) and isinstance(node, BaseModel) else None
