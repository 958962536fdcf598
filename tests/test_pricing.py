"""Tests for course_utils.pricing: prices come from the model catalogue, caching is priced, real usage is priced."""

from __future__ import annotations

import datetime as dt
import typing

import anthropic
import pytest
from anthropic.types import Model

from course_utils.pricing import (
    PRICES,
    PRICES_CHECKED,
    PRICING_URL,
    Cost,
    Price,
    cost,
    format_cost,
    price_for,
)

MODEL = "claude-haiku-4-5"


def _sdk_model_ids() -> set[str]:
    return {a for arg in typing.get_args(Model) for a in typing.get_args(arg) if isinstance(a, str)}


def test_every_priced_model_is_a_model_the_sdk_knows() -> None:
    assert set(PRICES) <= _sdk_model_ids(), set(PRICES) - _sdk_model_ids()


def test_the_table_is_dated_and_sourced() -> None:
    assert dt.date.fromisoformat(PRICES_CHECKED) <= dt.date.today()
    assert PRICING_URL.startswith("https://platform.claude.com/")


@pytest.mark.parametrize(
    "dated", ["claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929", "claude-opus-4-5-20251101"]
)
def test_a_dated_snapshot_costs_what_its_alias_costs(dated: str) -> None:
    alias = dated.rsplit("-", 1)[0]
    assert price_for(dated) == PRICES[alias] is not None


def test_an_unknown_model_has_no_price_rather_than_a_guess() -> None:
    assert price_for("claude-haiku-5-5") is None  # priced by prompt length: not a flat rate
    assert cost({"input_tokens": 10, "output_tokens": 10}, "claude-imaginary-9") is None
    assert format_cost(None) == "unknown price"


def test_cache_tokens_are_priced_at_their_own_rates() -> None:
    price = PRICES["claude-sonnet-4-5"]
    usage = {
        "input_tokens": 1_000_000,
        "output_tokens": 0,
        "cache_creation_input_tokens": 2_000_000,
        "cache_read_input_tokens": 3_000_000,
    }
    charged = cost(usage, "claude-sonnet-4-5")
    assert charged is not None
    assert charged.input_usd == pytest.approx(price.input)
    assert charged.cache_usd == pytest.approx(2 * price.cache_write + 3 * price.cache_read)
    assert charged.total_usd == pytest.approx(price.input + 2 * price.cache_write + 3 * price.cache_read)


def test_a_streamed_message_is_priced_from_its_final_usage(client: anthropic.Anthropic) -> None:
    with client.messages.stream(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "Hi"}]) as stream:
        message = stream.get_final_message()
    assert message.model != MODEL  # the API echoes the dated snapshot id, which must still find the price
    charged = cost(message.usage, message.model)
    price = PRICES[MODEL]
    assert isinstance(charged, Cost)
    expected = (message.usage.input_tokens * price.input + message.usage.output_tokens * price.output) / 1e6
    assert charged.total_usd == pytest.approx(expected)
    assert str(charged) == f"${expected:.6f}"


# -- one table: the simulator's model catalogue ------------------------------------------------------------------------


def test_prices_are_the_catalogues_for_every_id_of_a_priced_model() -> None:
    # course_utils/simulator/models.json is the one price table (each price names its source there).
    from course_utils.simulator.models import spec, specs

    priced = {model_id for s in specs() if s.price is not None for model_id in s.ids}
    assert set(PRICES) == priced
    for model_id in priced:
        rates = spec(model_id).price
        assert (
            price_for(model_id)
            == PRICES[model_id]
            == Price(
                input=rates["input"],
                output=rates["output"],
                cache_write=rates["cache_write_5m"],
                cache_read=rates["cache_read"],
                cache_write_1h=rates["cache_write_1h"],
            )
        )


def test_the_carried_over_list_prices() -> None:
    # pricing.py's former table (checked 2026-11-20 against the pricing page), carried over unchanged.
    assert PRICES_CHECKED == "2026-11-20"
    assert (PRICES["claude-haiku-4-5"].input, PRICES["claude-haiku-4-5"].output) == (1.00, 5.00)
    assert (PRICES["claude-sonnet-4-5"].input, PRICES["claude-sonnet-4-5"].cache_read) == (3.00, 0.30)
    assert (PRICES["claude-opus-4-8"].input, PRICES["claude-opus-4-8"].cache_write) == (5.00, 6.25)
    assert (PRICES["claude-sonnet-5"].input, PRICES["claude-sonnet-5"].output) == (2.00, 10.00)
    assert PRICES["claude-fable-5-1"].cache_read == 0.25 and PRICES["claude-fable-5"].cache_read == 1.00
    # The pricing page's 1h column; Opus 5.5 from its own model page (cache read 0.05x input).
    assert PRICES["claude-opus-4-8"].cache_write_1h == 10.00 and PRICES["claude-fable-5"].cache_write_1h == 20.00
    assert PRICES["claude-opus-5-5"] == Price(
        input=4.00, output=20.00, cache_write=5.00, cache_read=0.20, cache_write_1h=8.00
    )


@pytest.mark.parametrize(
    "model", ["claude-haiku-5-5", "claude-sonnet-5-5", "claude-fable-5-2", "claude-mythos-5-2", "claude-mythos-preview"]
)
def test_models_without_a_flat_sourced_price_stay_unpriced(model: str) -> None:
    # pricing.py's reasoning: Haiku 5.5 is priced by prompt length; Sonnet 5.5's cache-read rate is disputed;
    # no source prices the others.
    assert price_for(model) is None and cost({"input_tokens": 1}, model) is None


def test_cache_write_rates_follow_prompt_caching_md() -> None:
    # skills prompt-caching.md: "Cache writes cost 1.25x for 5-minute TTL, 2x for 1-hour TTL"; reads "~0.1x" (some
    # models publish less: Fable 5.1 0.025x, Opus 5.5 0.05x).
    for model, price in PRICES.items():
        assert price.cache_write == pytest.approx(1.25 * price.input), model
        assert price.cache_write_1h == pytest.approx(2 * price.input), model
        assert price.cache_read <= 0.1 * price.input + 1e-9, model


# -- prompt caching in cost() ------------------------------------------------------------------------------------------


def test_one_hour_and_five_minute_writes_are_priced_apart() -> None:
    # prompt-caching.md: input_tokens is only the uncached remainder; writes split by usage.cache_creation.
    price = PRICES[MODEL]
    usage = anthropic.types.Usage(
        input_tokens=1_000_000,
        output_tokens=1_000_000,
        cache_creation_input_tokens=3_000_000,
        cache_read_input_tokens=4_000_000,
        cache_creation=anthropic.types.CacheCreation(
            ephemeral_5m_input_tokens=1_000_000, ephemeral_1h_input_tokens=2_000_000
        ),
    )
    charged = cost(usage, "claude-haiku-4-5-20251001")
    assert charged is not None
    assert charged.input_usd == pytest.approx(price.input)  # 1 MTok uncached
    assert charged.output_usd == pytest.approx(price.output)
    assert charged.cache_write_usd == pytest.approx(1 * price.cache_write + 2 * price.cache_write_1h)
    assert charged.cache_write_usd == pytest.approx(1 * 1.25 + 2 * 2.0)  # Haiku 4.5: $1.25 (5m), $2 (1h)
    assert charged.cache_read_usd == pytest.approx(4 * price.cache_read)
    assert charged.cache_usd == pytest.approx(charged.cache_write_usd + charged.cache_read_usd)
    assert charged.total_usd == pytest.approx(price.input + price.output + 1.25 + 4.0 + 0.4)
    # The same 8 MTok prompt and 1 MTok output with no caching at all:
    assert charged.uncached_usd == pytest.approx(8 * price.input + price.output)
    assert charged.saved_usd == pytest.approx(charged.uncached_usd - charged.total_usd)


def test_writes_without_a_breakdown_are_five_minute_writes() -> None:
    # The default TTL is 5 minutes (prompt-caching.md); a usage without cache_creation has only 5-minute writes.
    price = PRICES["claude-opus-4-8"]
    charged = cost({"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 1_000_000}, "claude-opus-4-8")
    assert charged is not None and charged.cache_write_usd == pytest.approx(price.cache_write)
    only_hour = cost(
        {
            "cache_creation_input_tokens": 1_000_000,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 1_000_000},
        },
        "claude-opus-4-8",
    )
    assert only_hour is not None and only_hour.cache_write_usd == pytest.approx(price.cache_write_1h)


def test_a_cache_hit_costs_a_tenth_and_a_first_write_costs_more_than_no_cache() -> None:
    # prompt-caching.md economics: with 5-minute TTL two requests break even (1.25x + 0.1x vs 2x uncached).
    write = cost({"input_tokens": 100, "output_tokens": 10, "cache_creation_input_tokens": 10_000}, MODEL)
    hit = cost({"input_tokens": 100, "output_tokens": 10, "cache_read_input_tokens": 10_000}, MODEL)
    assert write is not None and hit is not None
    assert write.saved_usd < 0 < hit.saved_usd
    assert write.total_usd + hit.total_usd < write.uncached_usd + hit.uncached_usd
    assert hit.cache_read_usd == pytest.approx(10_000 * PRICES[MODEL].input * 0.1 / 1e6)


def test_old_style_callers_still_work() -> None:
    # chat_widget.py and notebook 05 build nothing themselves, but Cost and Price kept their first fields.
    assert Cost("m", 1.0, 2.0, 3.0).total_usd == 6.0 and Cost("m", 1.0, 2.0, 3.0).saved_usd == 0.0
    assert Price(1.0, 5.0, 1.25, 0.1).cache_write_1h is None
    assert format_cost(cost({"input_tokens": 12, "output_tokens": 37}, "claude-haiku-4-5-20251001")) == "$0.000197"
