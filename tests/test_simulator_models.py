"""The model catalogue (course_utils/simulator/models.json): the SDK's ids, ModelInfo's shape, each model's rules.

The SDK's `client.models.retrieve()` / `client.models.list()` read it over HTTP from the simulator, as they would
read the real `GET /v1/models`.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import typing
from typing import Any

import anthropic
import httpx
import pytest
from anthropic.types import Model, ModelCapabilities, ModelInfo, ModelLine
from pydantic import BaseModel

from course_utils.simulator import Simulator
from course_utils.simulator.models import (
    CATALOGUE,
    SAMPLING,
    THINKING_TYPES,
    ModelSpec,
    catalogue,
    dated_id,
    known_models,
    model_info,
    models_page,
    spec,
    specs,
)

KEY = {"x-api-key": "test-key"}


def _sdk_ids() -> list[str]:
    return [a for arg in typing.get_args(Model) for a in typing.get_args(arg) if isinstance(a, str)]


def _catalogued_ids() -> list[str]:
    return [model_id for s in specs() for model_id in s.ids]


# -- the catalogue and the SDK agree ---------------------------------------------------------------------------------


def test_every_sdk_id_has_exactly_one_entry_and_the_catalogue_invents_none() -> None:
    # Source of which ids exist: the installed SDK's types/model.py (api-today.md "Models are not alike").
    catalogued = _catalogued_ids()
    assert len(catalogued) == len(set(catalogued)), "an id appears in two entries"
    assert set(_sdk_ids()) == set(catalogued), set(_sdk_ids()) ^ set(catalogued)
    assert known_models() == tuple(_sdk_ids())  # the simulator accepts what the SDK lists, in its order


def test_an_alias_and_its_dated_id_are_one_entry() -> None:
    # SDK types/model.py lists claude-haiku-4-5 and claude-haiku-4-5-20251001; the API echoes the dated id.
    for alias, dated in [
        ("claude-haiku-4-5", "claude-haiku-4-5-20251001"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"),
        ("claude-opus-4-5", "claude-opus-4-5-20251101"),
    ]:
        entry = spec(alias)
        assert entry is not None and entry is spec(dated) and entry.id == dated and entry.alias == alias
        assert dated_id(alias) == dated == dated_id(dated)
    assert dated_id("claude-opus-4-8") == "claude-opus-4-8" and spec("claude-opus-4-8").alias is None
    assert spec("claude-imaginary-9") is None and dated_id("claude-imaginary-9") == "claude-imaginary-9"


def test_the_catalogue_is_a_dated_snapshot_and_every_entry_names_sources_it_defines() -> None:
    # The brief: a dated snapshot, no dependence on the wall clock, every value sourced.
    data = catalogue()
    assert dt.date.fromisoformat(data["snapshot"]) == dt.date(2026, 12, 1)
    dt.date.fromisoformat(data["prices_checked"])
    keys = {source["key"] for source in data["sources"]}
    assert len(keys) == len(data["sources"]) and all(source["what"] for source in data["sources"])
    for entry in data["models"]:
        assert entry["sources"] and set(entry["sources"]) <= keys, entry["id"]
        assert "sdk" in entry["sources"], entry["id"]  # the SDK is where every id comes from
        if entry["price"] is not None:
            assert entry["price"]["source"], entry["id"]


def test_the_catalogue_file_is_package_data() -> None:
    assert CATALOGUE.name == "models.json" and CATALOGUE.parent.name == "simulator" and CATALOGUE.is_file()


def _shape(model: type[BaseModel]) -> dict[str, Any]:
    """The key tree of an SDK model: nested dicts of field names, `None` at a {"supported": bool} leaf."""
    tree: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        inner = next(
            (
                a
                for a in (info.annotation, *typing.get_args(info.annotation))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        tree[name] = None if inner is None or set(inner.model_fields) == {"supported"} else _shape(inner)
    return tree


def _keys(value: dict[str, Any]) -> dict[str, Any]:
    return {k: (_keys(v) if isinstance(v, dict) and set(v) != {"supported"} else None) for k, v in value.items()}


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict) and set(value) == {"supported"}:
        return [value["supported"]]
    return [leaf for v in value.values() if isinstance(v, dict) for leaf in _leaves(v)]


@pytest.mark.parametrize("entry", catalogue()["models"], ids=lambda e: e["id"])
def test_capabilities_are_the_full_sdk_tree_with_every_key(entry: dict[str, Any]) -> None:
    # SDK types/model_capabilities.py and sub-types; ModelInfo: "Keys are always present for all known capabilities";
    # skills models.md: "the full capability tree for every model with supported: true/false at each leaf".
    caps = entry["capabilities"]
    assert _flatten(_keys(caps)) == _flatten(_shape(ModelCapabilities)), entry["id"]
    assert all(isinstance(leaf, bool) for leaf in _leaves(caps))
    for name in ("context_management", "effort", "server_tools", "thinking"):  # each parent has a plain bool
        assert isinstance(caps[name]["supported"], bool)
    ModelCapabilities.model_validate(caps)


def _flatten(tree: dict[str, Any], prefix: str = "") -> set[str]:
    out: set[str] = set()
    for key, value in tree.items():
        out.add(prefix + key)
        if isinstance(value, dict):
            out |= _flatten(value, prefix + key + ".")
    return out


@pytest.mark.parametrize("entry", catalogue()["models"], ids=lambda e: e["id"])
def test_each_entry_uses_the_vocabularies(entry: dict[str, Any]) -> None:
    s = spec(entry["id"])
    assert isinstance(s, ModelSpec)
    assert s.lifecycle in typing.get_args(ModelInfo.model_fields["lifecycle"].annotation)
    assert s.line in typing.get_args(ModelLine)  # SDK types/model_line.py
    assert s.sampling in SAMPLING and s.display_default in ("summarized", "omitted")
    assert s.thinking_types <= set(THINKING_TYPES) and s.thinking_types
    assert s.thinking_default in ("disabled", "adaptive") and s.thinking_default in s.thinking_types
    assert s.max_input_tokens > s.max_tokens > 0 and s.cache_min_tokens in (1024, 2048, 4096)
    assert (s.deprecated_at is None and s.retires_at is None) == (s.lifecycle == "active")
    if s.price is not None:
        assert set(s.price) == {"input", "output", "cache_write_5m", "cache_write_1h", "cache_read", "source"}


# -- GET /v1/models/{id} through the real SDK --------------------------------------------------------------------------


def test_retrieving_an_alias_resolves_to_its_dated_id(client: anthropic.Anthropic) -> None:
    # api-today.md: "Retrieving an alias resolves to the dated id where one exists."
    model = client.models.retrieve("claude-haiku-4-5")
    assert isinstance(model, ModelInfo) and model.type == "model"
    assert model.id == "claude-haiku-4-5-20251001" and model.display_name == "Claude Haiku 4.5"
    assert model.created_at == dt.datetime(2025, 10, 1, tzinfo=dt.UTC)
    assert (model.max_input_tokens, model.max_tokens) == (200_000, 64_000)  # skills models.md: 200K / 64K
    assert model.line == "haiku" and model.lifecycle == "active"
    assert client.models.retrieve("claude-haiku-4-5-20251001").id == model.id


def test_capabilities_support_bracket_access_as_skills_models_md_shows(client: anthropic.Anthropic) -> None:
    # skills models.md "Programmatic Model Discovery": `capabilities` "is an untyped nested dict — bracket access";
    # bracket chains are safe without .get() guards. SDK 2.11 parses it into a typed ModelCapabilities instead
    # (types/model_info.py), which has no __getitem__: bracket access works on the JSON (`model_dump()`, or the raw
    # response), attribute access on the typed object. Both are checked, and the drift is pinned.
    opus = client.models.retrieve("claude-opus-4-8")
    assert opus.id == "claude-opus-4-8" and opus.display_name == "Claude Opus 4.8"
    assert (opus.max_input_tokens, opus.max_tokens) == (1_000_000, 128_000)
    assert isinstance(opus.capabilities, ModelCapabilities)
    with pytest.raises(TypeError):  # skills models.md's spelling does not work on SDK 2.11's typed object
        opus.capabilities["thinking"]
    assert opus.capabilities.thinking.types.adaptive.supported is True
    raw = client.models.with_raw_response.retrieve("claude-opus-4-8").json()
    assert raw["capabilities"] == opus.model_dump(mode="json")["capabilities"]
    caps = raw["capabilities"]
    assert caps["thinking"]["types"]["adaptive"]["supported"] is True
    assert caps["thinking"]["types"]["enabled"]["supported"] is False  # Opus 4.7+: budget_tokens is a 400
    assert caps["effort"]["max"]["supported"] is True and caps["image_input"]["supported"] is True
    assert caps["structured_outputs"]["supported"] is True
    assert caps["context_management"]["compact_20260112"]["supported"] is True  # SKILL.md "Compaction"
    haiku = client.models.retrieve("claude-haiku-4-5").model_dump()["capabilities"]
    assert haiku["thinking"]["types"]["adaptive"]["supported"] is False  # manual extended thinking only
    assert haiku["effort"]["supported"] is False  # SKILL.md: effort "will error on Sonnet 4.5 / Haiku 4.5"


def test_sonnet_4_5_is_deprecated_and_stays_so_past_its_retirement_date(client: anthropic.Anthropic) -> None:
    # SDK _data/deprecated_models.py: retiring "November 30th, 2026". SDK ModelInfo.retires_at: "A past date on a
    # `deprecated` model means retirement is overdue, not that it has occurred: `lifecycle` is the retirement signal."
    for model_id in ("claude-sonnet-4-5", "claude-sonnet-4-5-20250929"):
        model = client.models.retrieve(model_id)
        assert model.id == "claude-sonnet-4-5-20250929"
        assert model.lifecycle == "deprecated"
        assert model.retires_at == dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    preview = client.models.retrieve("claude-mythos-preview")  # retiring "June 30th, 2026": also overdue
    assert preview.lifecycle == "deprecated" and preview.retires_at.date() == dt.date(2026, 6, 30)


def test_the_sdk_deprecation_list_is_the_catalogues_deprecated_set() -> None:
    # SDK _data/deprecated_models.py is the source of lifecycle "deprecated".
    from anthropic._data import DEPRECATED_MODELS

    deprecated = {model_id for s in specs() if s.lifecycle == "deprecated" for model_id in s.ids}
    assert deprecated == set(DEPRECATED_MODELS)


def test_an_unknown_model_is_a_404(fresh_sim: Simulator) -> None:
    response = httpx.get(fresh_sim.base_url + "/v1/models/claude-imaginary-9", headers=KEY)
    assert response.status_code == 404 and response.json()["error"]["type"] == "not_found_error"


def test_every_model_info_parses_as_the_sdks_model_info() -> None:
    for model_id in known_models():
        info = model_info(model_id)
        parsed = ModelInfo.model_validate(info)
        assert parsed.id == dated_id(model_id) and parsed.capabilities is not None
        assert set(info) == set(ModelInfo.model_fields)  # every field, none extra


def test_model_info_hands_out_a_copy() -> None:
    model_info("claude-opus-4-8")["capabilities"]["batch"]["supported"] = "edited"
    assert model_info("claude-opus-4-8")["capabilities"]["batch"]["supported"] is True


# -- GET /v1/models: one entry per model, paged ------------------------------------------------------------------------


def test_listing_auto_pages_through_one_entry_per_model(client: anthropic.Anthropic) -> None:
    # api-today.md: list returns ModelInfo; an alias and its dated id are one model, listed by its dated id.
    listed = [model.id for model in client.models.list(limit=4)]  # iterating follows after_id page by page
    assert listed == [s.id for s in specs()] and len(listed) == len(set(listed)) == 19
    assert "claude-haiku-4-5" not in listed and "claude-haiku-4-5-20251001" in listed
    every_id = {model_id for model_id in _sdk_ids()}
    assert every_id == {model_id for m in listed for model_id in spec(m).ids}  # every SDK id is reachable
    # skills models.md's filter, spelled with attribute access (SDK 2.11 types capabilities; see above).
    adaptive_1m = [
        m.id
        for m in client.models.list()
        if m.capabilities.thinking.types.adaptive.supported and m.max_input_tokens >= 1_000_000
    ]
    assert "claude-opus-4-8" in adaptive_1m and "claude-haiku-4-5-20251001" not in adaptive_1m


def test_paging_with_limit_after_id_and_before_id(client: anthropic.Anthropic) -> None:
    ids = [s.id for s in specs()]
    first = client.models.list(limit=5)
    assert [m.id for m in first.data] == ids[:5] and first.has_more
    assert (first.first_id, first.last_id) == (ids[0], ids[4])
    after = client.models.list(limit=5, after_id=ids[4])
    assert [m.id for m in after.data] == ids[5:10] and after.has_more
    before = client.models.list(limit=3, before_id=ids[10])
    assert [m.id for m in before.data] == ids[7:10] and before.has_more
    earliest = client.models.list(limit=5, before_id=ids[3])
    assert [m.id for m in earliest.data] == ids[:3] and not earliest.has_more
    tail = client.models.list(limit=5, after_id=ids[-3])
    assert [m.id for m in tail.data] == ids[-2:] and not tail.has_more
    backwards = [m.id for m in client.models.list(limit=4, before_id=ids[-1])]  # auto-paging follows before_id
    assert sorted(backwards) == sorted(ids[:-1])
    by_alias = models_page(limit=2, after_id="claude-opus-4-5")  # an alias names its model's place too
    assert [m["id"] for m in by_alias["data"]] == ids[ids.index("claude-opus-4-5-20251101") + 1 :][:2]


def test_the_raw_page_has_the_apis_fields(fresh_sim: Simulator) -> None:
    body = httpx.get(fresh_sim.base_url + "/v1/models", params={"limit": 2}, headers=KEY).json()
    assert set(body) == {"data", "has_more", "first_id", "last_id"}
    assert body["first_id"] == body["data"][0]["id"] and body["last_id"] == body["data"][-1]["id"]
    assert all(entry["type"] == "model" for entry in body["data"])


# -- what each model accepts (the rules the simulator applies) ---------------------------------------------------------


def _types(model: str) -> frozenset[str]:
    found = spec(model)
    assert found is not None
    return found.thinking_types


def test_thinking_types_and_defaults_per_model() -> None:
    # skills models.md / SKILL.md "Thinking & Effort" / model-migration.md, as summarised in api-today.md.
    for model in ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"):  # manual extended thinking only
        assert _types(model) == {"enabled", "disabled"} and spec(model).thinking_default == "disabled"
    for model in ("claude-sonnet-4-6", "claude-opus-4-6"):  # adaptive recommended, enabled deprecated but works
        assert _types(model) == {"adaptive", "enabled", "disabled"} and spec(model).thinking_default == "disabled"
    for model in ("claude-opus-4-7", "claude-opus-4-8"):  # adaptive only; omitting runs without thinking
        assert _types(model) == {"adaptive", "disabled"} and spec(model).thinking_default == "disabled"
    assert _types("claude-sonnet-5") == {"adaptive", "disabled"}  # budget_tokens removed
    assert spec("claude-sonnet-5").thinking_default == "adaptive"  # adaptive on when thinking is omitted
    for model in ("claude-fable-5", "claude-mythos-5"):  # thinking always on: disabled is a 400
        assert _types(model) == {"adaptive"} and not spec(model).accepts_disabled
        assert spec(model).thinking_default == "adaptive"
    assert spec("claude-haiku-4-5").accepts_enabled and not spec("claude-opus-4-7").accepts_enabled


def test_display_defaults() -> None:
    # skills SKILL.md: "omitted" by default on Fable 5 / Mythos 5 / Opus 4.8 / 4.7 / Sonnet 5, "a silent change from
    # Opus 4.6 and Sonnet 4.6, where it was summarized".
    for model in ("claude-fable-5", "claude-mythos-5", "claude-opus-4-8", "claude-opus-4-7", "claude-sonnet-5"):
        assert spec(model).display_default == "omitted"
    for model in ("claude-opus-4-6", "claude-sonnet-4-6"):
        assert spec(model).display_default == "summarized"


def test_prefill_and_sampling() -> None:
    # model-migration.md: prefill is a 400 on Opus 4.6 / Sonnet 4.6 and later; "on Claude 4.x keep at most one of
    # temperature or top_p"; removed on Opus 4.7 (and 4.8, Fable 5: SKILL.md); Sonnet 5 rejects non-default values.
    for model in ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"):
        assert spec(model).prefill and spec(model).sampling == "one_of"
    for model in ("claude-opus-4-6", "claude-sonnet-4-6"):
        assert not spec(model).prefill and spec(model).sampling == "one_of"
    for model in ("claude-opus-4-7", "claude-opus-4-8", "claude-fable-5", "claude-mythos-5"):
        assert not spec(model).prefill and spec(model).sampling == "removed"
    assert not spec("claude-sonnet-5").prefill and spec("claude-sonnet-5").sampling == "default_only"


def test_prompt_cache_minimums() -> None:
    # skills prompt-caching.md: 4096 for Opus 4.5-4.8 and Haiku 4.5; 2048 for Fable 5 and Sonnet 4.6; 1024 Sonnet 4.5.
    expected = {
        "claude-opus-4-8": 4096,
        "claude-opus-4-7": 4096,
        "claude-opus-4-6": 4096,
        "claude-opus-4-5": 4096,
        "claude-haiku-4-5": 4096,
        "claude-fable-5": 2048,
        "claude-mythos-5": 2048,
        "claude-sonnet-4-6": 2048,
        "claude-sonnet-4-5": 1024,
    }
    assert {model: spec(model).cache_min_tokens for model in expected} == expected


def test_documented_limits() -> None:
    # skills models.md: Haiku 4.5 200K / 64K; Sonnet 4.6, Opus 4.6-4.8, Sonnet 5, Fable 5 (and Mythos 5) 1M / 128K.
    assert (spec("claude-haiku-4-5").max_input_tokens, spec("claude-haiku-4-5").max_tokens) == (200_000, 64_000)
    for model in (
        "claude-sonnet-4-6",
        "claude-opus-4-6",
        "claude-opus-4-7",
        "claude-opus-4-8",
        "claude-sonnet-5",
        "claude-fable-5",
        "claude-mythos-5",
    ):
        assert (spec(model).max_input_tokens, spec(model).max_tokens) == (1_000_000, 128_000), model


def test_undocumented_values_are_conservative_and_say_so() -> None:
    # The catalogue's "conventions": unknown limits are the smallest documented (200K/64K), and the entry says so.
    for model in (
        "claude-fable-5-2",
        "claude-mythos-5-2",
        "claude-mythos-5-1",
        "claude-mythos-preview",
        "claude-opus-4-5",
        "claude-sonnet-4-5",
    ):
        s = spec(model)
        assert (s.max_input_tokens, s.max_tokens) == (200_000, 64_000), model
        assert "200K/64K" in s.notes, model
    assert spec("claude-fable-5-2").price is None and "unknown" in spec("claude-fable-5-2").notes


def test_the_same_info_without_importing_the_sdk() -> None:
    # The CLI (python -m course_utils.simulator) must not import the whole SDK: models.py reads types/model.py alone.
    code = (
        "import sys; from course_utils.simulator import models as m; "
        "assert m.known_models() and m.model_info('claude-haiku-4-5')['id'] == 'claude-haiku-4-5-20251001'; "
        "print(json.dumps(sorted(k for k in sys.modules if k == 'anthropic' or k.startswith('anthropic.'))))"
    )
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
