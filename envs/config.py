"""Typed configuration shared by every environment family (and by runs).

A config is a pydantic model that refuses unknown fields and checks ranges.
It loads from a YAML file, a packaged config name, a mapping or keyword
arguments; any problem is one :class:`~paretochain.errors.ConfigError` that
names the field, what was given and what is allowed, raised before any
simulation starts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar, cast

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from paretochain.errors import ConfigError

C = TypeVar("C", bound="ConfigModel")


def non_finite_path(value: Any, path: str = "") -> str | None:
    """The dotted path of the first NaN or infinite number inside ``value`` (mappings and lists searched), or None."""
    if isinstance(value, float) and not math.isfinite(value):
        return path or "(value)"
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = non_finite_path(item, f"{path}.{key}" if path else str(key))
            if found is not None:
                return found
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            found = non_finite_path(item, f"{path}[{i}]")
            if found is not None:
                return found
    return None


class ConfigModel(BaseModel):
    """Base of all configs: unknown fields are errors, values are re-checked on assignment.

    No number anywhere in a config may be NaN or infinite: typed float fields refuse them
    (``allow_inf_nan=False``) and free-form mappings (run overrides, hyperparameters) are
    searched too, so a bad value is refused with its field's name before anything runs.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _finite_numbers(cls, data: Any) -> Any:
        found = non_finite_path(data)
        if found is not None and isinstance(data, Mapping):
            raise PydanticCustomError(
                "non_finite", "{path}: must be a finite number", {"path": found, "value": _value_at(data, found)}
            )
        return data

    @classmethod
    def load(cls: type[C], source: str | Path | Mapping[str, Any] | C | None = None, **overrides: Any) -> C:
        """Build a config from a packaged name, a YAML path, a mapping or an instance, then apply overrides.

        Args:
            source: ``None`` for the defaults; a packaged config name such as ``"lost_sales"``
                (see ``configs/``); a path to a YAML file; a mapping; or a config instance.
            overrides: field values that replace those of ``source``; nested fields take
                dotted names in :func:`apply_overrides`, plain keyword names here.
        """
        if isinstance(source, cls):
            data: dict[str, Any] = source.model_dump()
            where = f"{cls.__name__} instance"
        elif source is None:
            data, where = {}, f"{cls.__name__} defaults"
        elif isinstance(source, Mapping):
            data, where = dict(source), f"{cls.__name__} mapping"
        else:
            path = resolve_config_path(cast("str | Path", source), cls.family())
            data, where = read_yaml(path), str(path)
        data = deep_merge(data, overrides)
        return cls.validate_data(data, where)

    @classmethod
    def validate_data(cls: type[C], data: Mapping[str, Any], where: str) -> C:
        try:
            return cls.model_validate(dict(data))
        except ValidationError as exc:
            raise ConfigError(format_validation_error(exc, cls, where)) from None

    @classmethod
    def family(cls) -> str:
        """The folder under ``configs/`` holding this family's packaged configs."""
        return ""

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def _value_at(data: Mapping[str, Any], path: str) -> Any:
    """The value at a path made by :func:`non_finite_path` (for the error message)."""
    node: Any = data
    for part in path.replace("[", ".[").split("."):
        if part.startswith("["):
            node = node[int(part[1:-1])]
        elif part:
            node = node[part]
    return node


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of field: value, got {type(data).__name__}")
    return data


def packaged_configs_dir() -> Path:
    """The ``configs/`` folder shipped with the package."""
    return Path(str(resources.files("paretochain.configs")))


def resolve_config_path(source: str | Path, family: str) -> Path:
    """A YAML path as given, or a packaged config name looked up under ``configs/<family>/``."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.exists():
            raise ConfigError(f"config file {path} does not exist")
        return path
    folder = packaged_configs_dir() / family
    candidate = folder / f"{source}.yaml"
    if candidate.exists():
        return candidate
    names = sorted(p.stem for p in folder.glob("*.yaml")) if folder.exists() else []
    raise ConfigError(
        f"unknown config {str(source)!r}: not a file, and not a packaged config of {family!r} (those are {names})"
    )


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``update`` into a copy of ``base``; nested mappings merge, everything else replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``dotted.key=value`` strings (values parsed as YAML) to a nested mapping."""
    out = dict(data)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form dotted.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty key segment")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        node: dict[str, Any] = out
        for part in parts[:-1]:
            child = node.get(part)
            child = dict(child) if isinstance(child, Mapping) else {}
            node[part] = child
            node = child
        node[parts[-1]] = value
    return out


def _allowed_fields(model: type[BaseModel], loc: Sequence[Any]) -> list[str] | None:
    """Field names allowed at the parent of ``loc`` (for 'unknown field' messages)."""
    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return None
        annotation = fields[part].annotation
        current = _model_in(annotation)
        if current is None:
            return None
    fields = getattr(current, "model_fields", None)
    return sorted(fields) if fields else None


def _model_in(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def format_validation_error(exc: ValidationError, model: type[BaseModel], where: str) -> str:
    lines = [f"invalid {model.__name__} ({where}):"]
    for err in exc.errors():
        loc = [
            p
            for p in err["loc"]
            if not (isinstance(p, str) and ("[" in p or p in ("function-after", "function-before")))
        ]
        field = ".".join(str(p) for p in loc) or "(top level)"
        if err["type"] == "non_finite":
            ctx = err.get("ctx") or {}
            field = ".".join(str(p) for p in [*loc, ctx.get("path", "")] if p != "")
            lines.append(f"  - {field}: must be a finite number, not NaN or infinite (got {ctx.get('value')!r})")
        elif err["type"] == "extra_forbidden":
            allowed = _allowed_fields(model, loc)
            hint = f"; allowed fields here: {', '.join(allowed)}" if allowed else ""
            lines.append(f"  - {field}: unknown field{hint}")
        else:
            given = err.get("input")
            shown = "" if isinstance(given, Mapping) else f" (got {given!r})"
            lines.append(f"  - {field}: {err['msg']}{shown}")
    if len(lines) == 2:  # one problem: one line
        return f"{lines[0]} {lines[1].strip().removeprefix('- ')}"
    return "\n".join(lines)
