"""The simulator's model catalogue: which ids exist (the installed SDK's list) and what each model is (models.json).

`models.json` is a dated snapshot with one entry per model (an alias and its dated id are one entry), each naming
its sources. The SDK decides which ids are accepted, as the real API would for that SDK; the catalogue says how each
behaves and what `GET /v1/models` returns. A test fails when the two disagree.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

__all__ = [
    "ModelSpec",
    "catalogue",
    "dated_id",
    "display_name",
    "known_models",
    "model_info",
    "models_page",
    "spec",
    "specs",
]

CATALOGUE = Path(__file__).with_name("models.json")
THINKING_TYPES = ("adaptive", "between_tools", "disabled", "enabled")
SAMPLING = ("any", "one_of", "default_only", "removed")
_EPOCH = "1970-01-01T00:00:00Z"


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


@dataclass(frozen=True)
class ModelSpec:
    """One model of the catalogue: its ids, its `ModelInfo` fields and the request rules the simulator applies."""

    id: str  # the dated id when one exists, else the only id
    alias: str | None  # the undated alias of a dated id (`claude-haiku-4-5`), else None
    display_name: str
    created_at: str  # RFC 3339; the epoch when no source gives a release date
    lifecycle: str  # "active", "deprecated" or "retired"
    deprecated_at: str | None
    retires_at: str | None
    line: str | None  # one of the SDK's ModelLine values
    max_input_tokens: int
    max_tokens: int
    capabilities: dict[str, Any] = field(hash=False, repr=False)  # the full ModelCapabilities tree
    thinking_types: frozenset[str]  # the accepted `thinking.type` values (from capabilities.thinking.types)
    thinking_default: str  # what runs when `thinking` is omitted: "disabled" or "adaptive"
    display_default: str  # `thinking.display` when not sent: "summarized" or "omitted"
    prefill: bool  # whether a final assistant turn (prefill) is accepted
    sampling: str  # "any", "one_of", "default_only" or "removed" (see models.json "conventions")
    cache_min_tokens: int  # the shortest prefix that caches
    price: dict[str, Any] | None = field(hash=False)  # USD/MTok input, output, cache_write_5m/_1h, cache_read; source
    sources: tuple[str, ...] = ()  # keys into the catalogue's "sources"
    notes: str = field(default="", repr=False)

    @property
    def ids(self) -> tuple[str, ...]:
        """Every id that names this model: the alias (if any), then the id."""
        return (self.alias, self.id) if self.alias else (self.id,)

    @property
    def accepts_disabled(self) -> bool:
        """Whether `thinking: {"type": "disabled"}` is accepted (False: a 400)."""
        return "disabled" in self.thinking_types

    @property
    def accepts_enabled(self) -> bool:
        """Whether manual extended thinking (`{"type": "enabled", "budget_tokens": N}`) is accepted."""
        return "enabled" in self.thinking_types


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Any]:
    """The parsed models.json (snapshot date, sources, conventions, models), read once."""
    return json.loads(CATALOGUE.read_text(encoding="utf-8"))


def _spec(entry: dict[str, Any]) -> ModelSpec:
    types = entry["capabilities"]["thinking"]["types"]
    return ModelSpec(
        id=entry["id"],
        alias=entry.get("alias"),
        display_name=entry["display_name"],
        created_at=entry["created_at"],
        lifecycle=entry["lifecycle"],
        deprecated_at=entry.get("deprecated_at"),
        retires_at=entry.get("retires_at"),
        line=entry.get("line"),
        max_input_tokens=entry["max_input_tokens"],
        max_tokens=entry["max_tokens"],
        capabilities=entry["capabilities"],
        thinking_types=frozenset(t for t in THINKING_TYPES if types[t]["supported"]),
        thinking_default=entry["thinking_default"],
        display_default=entry["display_default"],
        prefill=entry["prefill"],
        sampling=entry["sampling"],
        cache_min_tokens=entry["cache_min_tokens"],
        price=entry.get("price"),
        sources=tuple(entry.get("sources", ())),
        notes=entry.get("notes", ""),
    )


@lru_cache(maxsize=1)
def specs() -> tuple[ModelSpec, ...]:
    """Every model of the catalogue, in its order (newest first, as `GET /v1/models` lists them)."""
    return tuple(_spec(entry) for entry in catalogue()["models"])


@lru_cache(maxsize=1)
def _by_id() -> dict[str, ModelSpec]:
    return {model_id: s for s in specs() for model_id in s.ids}


def spec(model: str) -> ModelSpec | None:
    """The catalogue entry for an alias or a dated id; None for an id the catalogue does not hold."""
    return _by_id().get(model)


def dated_id(model: str) -> str:
    """The dated snapshot id the real API echoes for an alias (`claude-haiku-4-5` -> `claude-haiku-4-5-20251001`)."""
    found = spec(model)
    if found is not None:
        return found.id
    for candidate in known_models():
        if candidate.startswith(model + "-") and re.fullmatch(r"\d{8}", candidate[len(model) + 1 :]):
            return candidate
    return model


def display_name(model: str) -> str:
    """The catalogue's name for a model, else one made like the API's (`claude-opus-4-5` -> `Claude Opus 4.5`)."""
    found = spec(model)
    if found is not None:
        return found.display_name
    base = re.sub(r"-\d{8}$", "", model)
    words = base.split("-")
    family = [w.capitalize() for w in words if not w.isdigit()]
    version = ".".join(w for w in words if w.isdigit())
    return " ".join(family + ([version] if version else []))


def model_info(model: str) -> dict[str, Any]:
    """`GET /v1/models/{model}` as the SDK's `ModelInfo` parses it; an alias resolves to its dated id."""
    found = spec(model)
    if found is None:  # an id the SDK knows but the catalogue lacks (a newer SDK): the minimum ModelInfo needs
        date = re.search(r"(\d{4})(\d{2})(\d{2})$", model)
        created = f"{date.group(1)}-{date.group(2)}-{date.group(3)}T00:00:00Z" if date else _EPOCH
        return {
            "type": "model",
            "id": model,
            "display_name": display_name(model),
            "created_at": created,
            "lifecycle": "active",
            "deprecated_at": None,
            "retires_at": None,
            "line": None,
            "max_input_tokens": None,
            "max_tokens": None,
            "capabilities": None,
        }
    return {
        "type": "model",
        "id": found.id,
        "display_name": found.display_name,
        "created_at": found.created_at,
        "lifecycle": found.lifecycle,
        "deprecated_at": found.deprecated_at,
        "retires_at": found.retires_at,
        "line": found.line,
        "max_input_tokens": found.max_input_tokens,
        "max_tokens": found.max_tokens,
        "capabilities": json.loads(json.dumps(found.capabilities)),
    }  # a copy: callers may not edit the catalogue


def _listed() -> list[str]:
    """The ids `GET /v1/models` lists: one per model (the dated id), catalogue order, only those the SDK knows."""
    known = set(known_models())
    listed = [s.id for s in specs() if known & set(s.ids)]
    covered = {model_id for s in specs() for model_id in s.ids}
    listed += [m for m in known_models() if m not in covered]  # SDK ids the catalogue lacks still get listed
    return listed


def models_page(limit: int = 20, after_id: str | None = None, before_id: str | None = None) -> dict[str, Any]:
    """A page of `GET /v1/models`: `limit` models after `after_id` or just before `before_id`, as the API pages."""
    ids = _listed()
    after = dated_id(after_id) if after_id else None
    before = dated_id(before_id) if before_id else None
    if after in ids:
        rest = ids[ids.index(after) + 1 :]
        page, has_more = rest[:limit], len(rest) > limit
    elif before in ids:
        rest = ids[: ids.index(before)]
        page, has_more = rest[-limit:], len(rest) > limit
    else:
        page, has_more = ids[:limit], len(ids) > limit
    return {
        "data": [model_info(m) for m in page],
        "has_more": has_more,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }
