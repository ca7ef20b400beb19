"""Read `environments/<name>.yaml` over `environments/base.yaml` into one `Environment`.

    >>> from environments import load_environment
    >>> load_environment("prod").apps.inference_api.autoscaling.max_replicas
    10

Mappings merge key by key (an env file sets only what differs); lists and scalars replace.
Every failure is an `EnvironmentFileError` whose one line names the file, the field and
what is allowed.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, get_args

import yaml
from pydantic import BaseModel, ValidationError

from environments.model import Environment

ENV_DIR = Path(__file__).resolve().parent
BASE_FILE = ENV_DIR / "base.yaml"


MAX_FILE_BYTES = 1024 * 1024  # the shipped files are a few KiB


class EnvironmentFileError(ValueError):
    """An environment file that cannot become an `Environment`; the message is one line."""

    def __init__(self, source: str, field: str, message: str) -> None:
        self.source, self.field, self.message = source, field, message
        where = f"{source}: {field}" if field else source
        super().__init__(f"{where}: {message}")


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys instead of silently keeping the last one."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def environment_names() -> list[str]:
    """The environments this checkout ships, in promotion order."""
    order = list(get_args(Environment.model_fields["name"].annotation))
    return [n for n in order if (ENV_DIR / f"{n}.yaml").is_file()]


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            # A YAML parser takes minutes and gigabytes on such a file before it fails.
            raise EnvironmentFileError(str(path), "", f"{size:,} bytes: an environment file is at most "
                                       f"{MAX_FILE_BYTES:,} bytes")
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise EnvironmentFileError(str(path), "", f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise EnvironmentFileError(str(path), f"byte {e.start}", f"not UTF-8 text ({e.reason})") from None
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        at = f"line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise EnvironmentFileError(str(path), at, f"invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise EnvironmentFileError(str(path), "", f"expected a mapping at the top, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_environment(name_or_path: str | Path = "local", overrides: dict[str, Any] | None = None) -> Environment:
    """Load a shipped environment by name, or any file by path, over the shared base."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = ENV_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise EnvironmentFileError(
                str(path), "", f"no such environment {str(name_or_path)!r}; shipped: {', '.join(environment_names())}"
            )
    data = deep_merge(read_yaml(BASE_FILE), read_yaml(path))
    if overrides:
        data = deep_merge(data, overrides)
    return parse_environment(data, source=_display(path))


def with_overrides(env: Environment, overrides: dict[str, Any]) -> Environment:
    """`env` (as its caller has it, overrides and all) with `overrides` on top, validated again."""
    return parse_environment(deep_merge(env.model_dump(mode="json"), overrides), source=f"{env.name} (with overrides)")


def overrides_of(env: Environment) -> dict[str, Any]:
    """What `env` sets beyond its shipped file, as `load_environment(env.name, overrides)` takes
    it: so a process that has only the name (Pulumi's dynamic providers) rebuilds the same env."""
    return _difference(env.model_dump(mode="json"), load_environment(env.name).model_dump(mode="json"))


def _difference(new: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            nested = _difference(value, old[key])
            if nested:
                out[key] = nested
        elif key not in old or old[key] != value:
            out[key] = value
    return out


def parse_environment(data: dict[str, Any], *, source: str) -> Environment:
    try:
        return Environment.model_validate(data)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        field = ".".join(str(p) for p in errors[0]["loc"])
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise EnvironmentFileError(source, field, _explain(errors[0]) + more) from None


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ENV_DIR.parent))
    except ValueError:
        return str(path)


def _explain(error: Any) -> str:
    """pydantic's message, plus the allowed keys when a key is unknown."""
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(list(error["loc"][:-1]))
        message = "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    elif error["type"] == "missing":
        message = "required field is missing"
    value = error.get("input")
    if error["type"] not in ("missing", "extra_forbidden") and not isinstance(value, dict | list):
        message += f" (got {value!r})"
    return message


def _allowed_keys(loc: list[Any]) -> list[str]:
    model: Any = Environment
    for part in loc:
        if isinstance(model, type) and issubclass(model, BaseModel) and isinstance(part, str) and part in model.model_fields:
            model = model.model_fields[part].annotation
        elif isinstance(part, str | int):
            # Into a dict value or list item: take the value type of the container.
            args = [a for a in get_args(model) if a is not type(None)]
            model = args[-1] if args else None
        model = _unwrap(model)
    return sorted(model.model_fields) if isinstance(model, type) and issubclass(model, BaseModel) else []


def _unwrap(annotation: Any) -> Any:
    """Optional[X] -> X; Annotated[X, ...] -> X."""
    if typing.get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    args = [a for a in get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, type(int | None)) and len(args) == 1:
        return args[0]
    return annotation
