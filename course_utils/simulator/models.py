"""The model ids the simulator accepts: exactly those the installed SDK knows, as the real API would."""

from __future__ import annotations

import importlib.util
import re
import sys
import typing
from functools import lru_cache
from pathlib import Path
from typing import Any


@lru_cache(maxsize=1)
def known_models() -> tuple[str, ...]:
    """Every model id in the installed SDK's `anthropic.types.Model`, newest first as the SDK lists them."""
    ids: list[str] = []
    for arg in typing.get_args(_sdk_model_type()):
        ids.extend(a for a in typing.get_args(arg) if isinstance(a, str))
    return tuple(ids)


def _sdk_model_type() -> Any:
    """`anthropic.types.Model`; read from its own small module if the SDK is not imported yet.

    Importing the SDK takes seconds, and `python -m course_utils.simulator` needs nothing else from it.
    """
    if "anthropic.types" not in sys.modules:
        spec = importlib.util.find_spec("anthropic")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            path = Path(folder) / "types" / "model.py"
            module_spec = importlib.util.spec_from_file_location("_anthropic_model_ids", path)
            if path.is_file() and module_spec and module_spec.loader:
                module = importlib.util.module_from_spec(module_spec)
                try:
                    module_spec.loader.exec_module(module)
                    return module.Model
                except Exception:  # noqa: BLE001 - a layout we do not know: import the SDK instead
                    break
    from anthropic.types import Model

    return Model


def dated_id(model: str) -> str:
    """The dated snapshot id the real API echoes for an alias (`claude-haiku-4-5` -> `claude-haiku-4-5-20251001`)."""
    for candidate in known_models():
        if candidate.startswith(model + "-") and re.fullmatch(r"\d{8}", candidate[len(model) + 1:]):
            return candidate
    return model


def display_name(model: str) -> str:
    """A human name like the API's (`claude-opus-4-5` -> `Claude Opus 4.5`)."""
    base = re.sub(r"-\d{8}$", "", model)
    words = base.split("-")
    family = [w.capitalize() for w in words if not w.isdigit()]
    version = ".".join(w for w in words if w.isdigit())
    return " ".join(family + ([version] if version else []))


def model_info(model: str) -> dict[str, Any]:
    """One entry of `GET /v1/models`."""
    date = re.search(r"(\d{4})(\d{2})(\d{2})$", model)
    created = f"{date.group(1)}-{date.group(2)}-{date.group(3)}T00:00:00Z" if date else "1970-01-01T00:00:00Z"
    return {"type": "model", "id": model, "display_name": display_name(model), "created_at": created}


def models_page(limit: int = 20, after_id: str | None = None, before_id: str | None = None) -> dict[str, Any]:
    """A page of `GET /v1/models`, paginated the way the API does it."""
    ids = list(known_models())
    if after_id in ids:
        ids = ids[ids.index(after_id) + 1:]
    elif before_id in ids:
        ids = ids[:ids.index(before_id)][-limit:]
    page, has_more = ids[:limit], len(ids) > limit
    data = [model_info(m) for m in page]
    return {"data": data, "has_more": has_more, "first_id": page[0] if page else None,
            "last_id": page[-1] if page else None}
