"""Tests for course_utils.pricing: the table names real model ids, and a real final message is priced from it."""

from __future__ import annotations

import datetime as dt
import typing

import anthropic
import pytest
from anthropic.types import Model

from course_utils.pricing import PRICES, PRICES_CHECKED, PRICING_URL, Cost, cost, format_cost, price_for

MODEL = "claude-haiku-4-5"


def _sdk_model_ids() -> set[str]:
    return {a for arg in typing.get_args(Model) for a in typing.get_args(arg) if isinstance(a, str)}


def test_every_priced_model_is_a_model_the_sdk_knows() -> None:
    assert set(PRICES) <= _sdk_model_ids(), set(PRICES) - _sdk_model_ids()


def test_the_table_is_dated_and_sourced() -> None:
    assert dt.date.fromisoformat(PRICES_CHECKED) <= dt.date.today()
    assert PRICING_URL.startswith("https://platform.claude.com/")


@pytest.mark.parametrize("dated", ["claude-haiku-4-5-20251001", "claude-sonnet-4-5-20250929",
                                   "claude-opus-4-5-20251101"])
def test_a_dated_snapshot_costs_what_its_alias_costs(dated: str) -> None:
    alias = dated.rsplit("-", 1)[0]
    assert price_for(dated) == PRICES[alias] is not None


def test_an_unknown_model_has_no_price_rather_than_a_guess() -> None:
    assert price_for("claude-haiku-5-5") is None  # priced by prompt length: not a flat rate
    assert cost({"input_tokens": 10, "output_tokens": 10}, "claude-imaginary-9") is None
    assert format_cost(None) == "unknown price"


def test_cache_tokens_are_priced_at_their_own_rates() -> None:
    price = PRICES["claude-sonnet-4-5"]
    usage = {"input_tokens": 1_000_000, "output_tokens": 0, "cache_creation_input_tokens": 2_000_000,
             "cache_read_input_tokens": 3_000_000}
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
