"""Finding and reading ``passport.yaml``, with the environment's overrides.

- The file: ``PASSPORT_CONFIG`` if set, else ``passport.yaml`` in the current folder, else the
  one at the repository root (the shipped demo configuration).
- ``PASSPORT_WAREHOUSE`` replaces the file's ``warehouse`` (relative to the current folder,
  as a shell user expects); the file's own relative paths are from the file's folder.

Every failure is a :class:`ConfigError` a person can act on: a missing file names the path and
the variable that sets it, a YAML syntax error its line and column, an invalid file one line per
problem (see :mod:`.errors`), a key given twice in one section both lines.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from passport_pipeline.config.errors import ConfigError, key_path, problem_lines
from passport_pipeline.config.models import PassportConfig

CONFIG_ENV = "PASSPORT_CONFIG"
WAREHOUSE_ENV = "PASSPORT_WAREHOUSE"
CONFIG_FILE = "passport.yaml"
REPO_ROOT = Path(__file__).resolve().parents[2]


def config_path(env: Mapping[str, str] = os.environ) -> Path:
    """The configuration file in effect: ``PASSPORT_CONFIG``, ``./passport.yaml`` or the repo's."""
    if env.get(CONFIG_ENV):
        return Path(os.path.abspath(Path(env[CONFIG_ENV]).expanduser()))
    candidates = [Path.cwd() / CONFIG_FILE, REPO_ROOT / CONFIG_FILE]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILE} found in {candidates[0].parent} or {candidates[1].parent}: "
        f"create one (start from the shipped {CONFIG_FILE}) or set {CONFIG_ENV} to its path"
    )


def load_config(path: str | Path | None = None, env: Mapping[str, str] = os.environ) -> PassportConfig:
    """Read, validate and return the configuration; :class:`ConfigError` says what is wrong."""
    file = Path(os.path.abspath(Path(path).expanduser())) if path is not None else config_path(env)
    data, lines, duplicates = _read(file, from_env=path is None and bool(env.get(CONFIG_ENV)))
    problems = list(duplicates)
    config = None
    try:
        config = PassportConfig.model_validate(data, context={"config_dir": file.parent})
    except ValidationError as error:
        problems += problem_lines(error, PassportConfig, data, lines)
    if problems:
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise ConfigError(f"{file} has {count}:", problems)
    if env.get(WAREHOUSE_ENV):
        warehouse = Path(os.path.abspath(Path(env[WAREHOUSE_ENV]).expanduser()))
        config = config.model_copy(update={"warehouse": warehouse})
    return config


def _read(file: Path, from_env: bool) -> tuple[Any, dict[tuple, int], list[str]]:
    """The file's data, the line of each key and list item, and keys given twice."""
    try:
        text = file.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        if from_env:
            raise ConfigError(f"{CONFIG_ENV} points to {file}, which is not a file: set it to your {CONFIG_FILE}'s path")
        raise ConfigError(f"there is no configuration file at {file}: give your {CONFIG_FILE}'s path (or set {CONFIG_ENV})")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{file} is not UTF-8 text (byte {error.start}): save it as UTF-8") from None
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as error:
        mark, context = error.problem_mark, error.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        within = f" ({error.context} at line {context.line + 1})" if error.context and context else ""
        raise ConfigError(f"{file} is not valid YAML:", [f"{where}{error.problem}{within}"]) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{file} is not valid YAML:", [str(error)]) from None
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise ConfigError(f"{file} holds no settings: it needs keys such as warehouse:, simulator: and sources:")
    lines: dict[tuple, int] = {}
    duplicates: list[str] = []
    _index(node, (), lines, duplicates, data)
    return data, lines, duplicates


def _index(node: yaml.Node, path: tuple, lines: dict[tuple, int], duplicates: list[str], data: Any) -> None:
    """Record where each key and list item starts; report keys repeated in one mapping."""
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key, line = key_node.value, key_node.start_mark.line + 1
            if key in seen:
                duplicates.append(
                    f"{key_path(path, data) or 'top level'} (line {line}): key '{key}' is given twice "
                    f"(lines {seen[key]} and {line}): keep one"
                )
            seen.setdefault(key, line)
            lines.setdefault((*path, key), line)
            _index(value_node, (*path, key), lines, duplicates, data)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            _index(item, (*path, i), lines, duplicates, data)
