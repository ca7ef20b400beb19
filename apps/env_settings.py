"""A container's settings from its environment variables: one mapping, one error style for every app.

    >>> settings = settings_from_environ(CleanupSettings, variables={"DRY_RUN": "dry_run"}, environ=os.environ,
    ...                                  required=(), hint="", error=SettingsError)   # doctest: +SKIP

Empty variables count as unset; keyword overrides (command-line options) win over the
environment; a bad value names its variable ("DRY_RUN='maybe': Input should be a valid boolean").
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TypeVar

from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


def settings_from_environ(
    model: type[M],
    *,
    variables: Mapping[str, str],
    environ: Mapping[str, str],
    overrides: Mapping[str, object] | None = None,
    required: Collection[str],
    hint: str,
    error: type[Exception],
) -> M:
    """`variables` maps VARIABLE -> field; `required` names fields, `hint` says what they should hold."""
    values: dict[str, object] = {field: environ[var] for var, field in variables.items() if environ.get(var, "") != ""}
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    missing = [var for var, field in variables.items() if field in required and field not in values]
    if missing:
        raise error(f"{', '.join(missing)} not set: {hint}")
    try:
        return model.model_validate(values)
    except ValidationError as e:
        first = e.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        var = next((v for v, f in variables.items() if f == field), field)
        raise error(f"{var}={values.get(field)!r}: {first['msg']}") from None
