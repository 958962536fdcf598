"""What a request cost: the final message's token usage times a dated table of list prices.

Source: Anthropic's pricing page, https://platform.claude.com/docs/en/about-claude/pricing ("Model pricing"), and the
model overview pages it links to. The rates below are standard list prices in USD per million tokens (MTok), copied
on `PRICES_CHECKED`. They change: check the page before you rely on a figure. Batch, long-context, fast-mode, data
residency and negotiated prices differ and are not modelled here.

A model this table does not list has an *unknown* price (`price_for` returns None, `cost` returns None) rather than a
guess: a wrong cost shown with confidence is worse than none. Left out on purpose: Claude Haiku 5.5, whose price
depends on the prompt's length ("from $0.10 / $0.50" on its model page), which a flat rate per token cannot express,
and Claude Opus 5.5 and Sonnet 5.5, whose cache rates could not be confirmed from Anthropic's own pages when the
table was made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = ["PRICES", "PRICES_CHECKED", "PRICING_URL", "Cost", "Price", "cost", "format_cost", "price_for"]

PRICING_URL = "https://platform.claude.com/docs/en/about-claude/pricing"
PRICES_CHECKED = "2026-11-20"


@dataclass(frozen=True)
class Price:
    """List prices of one model, USD per million tokens."""

    input: float
    output: float
    cache_write: float  # a 5-minute cache write
    cache_read: float  # a cache hit or refresh


_OPUS = Price(input=5.00, output=25.00, cache_write=6.25, cache_read=0.50)
_SONNET_4 = Price(input=3.00, output=15.00, cache_write=3.75, cache_read=0.30)

PRICES: dict[str, Price] = {
    "claude-fable-5-1": Price(input=10.00, output=50.00, cache_write=12.50, cache_read=0.25),
    "claude-mythos-5-1": Price(input=10.00, output=50.00, cache_write=12.50, cache_read=0.25),
    "claude-fable-5": Price(input=10.00, output=50.00, cache_write=12.50, cache_read=1.00),
    "claude-mythos-5": Price(input=10.00, output=50.00, cache_write=12.50, cache_read=1.00),
    "claude-opus-5": _OPUS,
    "claude-opus-4-8": _OPUS,
    "claude-opus-4-7": _OPUS,
    "claude-opus-4-6": _OPUS,
    "claude-opus-4-5": _OPUS,
    "claude-sonnet-5": Price(input=2.00, output=10.00, cache_write=2.50, cache_read=0.20),
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-haiku-4-5": Price(input=1.00, output=5.00, cache_write=1.25, cache_read=0.10),
}

_DATED = re.compile(r"-\d{8}$")


def price_for(model: str) -> Price | None:
    """The list price of a model id or its dated snapshot (`claude-haiku-4-5-20251001`), or None if unknown."""
    return PRICES.get(_DATED.sub("", model))


@dataclass(frozen=True)
class Cost:
    """The cost of one request in USD, split the way the bill splits it."""

    model: str
    input_usd: float
    output_usd: float
    cache_usd: float

    @property
    def total_usd(self) -> float:
        """Input, output and cache together."""
        return self.input_usd + self.output_usd + self.cache_usd

    def __str__(self) -> str:
        return format_cost(self)


def _field(usage: Any, name: str) -> int:
    value = usage.get(name) if isinstance(usage, dict) else getattr(usage, name, None)
    return int(value or 0)


def cost(usage: Any, model: str) -> Cost | None:
    """What `usage` (a message's `Usage`, or a dict like it) cost at `model`'s list price; None if unknown."""
    price = price_for(model)
    if price is None:
        return None
    per_token = 1 / 1_000_000
    return Cost(
        model=model,
        input_usd=_field(usage, "input_tokens") * price.input * per_token,
        output_usd=_field(usage, "output_tokens") * price.output * per_token,
        cache_usd=(_field(usage, "cache_creation_input_tokens") * price.cache_write
                   + _field(usage, "cache_read_input_tokens") * price.cache_read) * per_token,
    )


def format_cost(value: Cost | None) -> str:
    """A cost for people: `$0.000412`, or `unknown price` when the model is not in the table."""
    if value is None:
        return "unknown price"
    return f"${value.total_usd:.6f}"
