"""What a request cost: the final message's token usage times the list prices in the simulator's model catalogue.

Source: Anthropic's pricing page, https://platform.claude.com/docs/en/about-claude/pricing ("Model pricing"), and the
model overview pages it links to. The rates are standard list prices in USD per million tokens (MTok), kept with
each model in `course_utils/simulator/models.json` (one table for the simulator and for this module), each naming
where it came from; the flat rates were checked on `PRICES_CHECKED`. They change: check the page before you rely on
a figure. Batch, long-context, fast-mode, data residency and negotiated prices differ and are not modelled here.

Prompt caching (skills prompt-caching.md): `usage.input_tokens` is only the uncached remainder of the prompt;
`cache_creation_input_tokens` were written to the cache (split by `usage.cache_creation` into 5-minute writes, about
1.25x the input rate, and 1-hour writes, 2x) and `cache_read_input_tokens` were read from it (about 0.1x; some
models' published read rate is lower). Each is priced at its own published rate.

A model the catalogue gives no flat price has an *unknown* price (`price_for` returns None, `cost` returns None)
rather than a guess: a wrong cost shown with confidence is worse than none. Left out on purpose: Claude Haiku 5.5,
whose price depends on the prompt's length ("from $0.10 / $0.50" on its model page), which a flat rate per token
cannot express; Claude Sonnet 5.5, whose cache-read rate sources disagree on; and the models no source prices
(Claude Fable 5.2, Mythos 5.2, Mythos Preview).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .simulator.models import catalogue, specs

__all__ = ["PRICES", "PRICES_CHECKED", "PRICING_URL", "Cost", "Price", "cost", "format_cost", "price_for"]

PRICING_URL = "https://platform.claude.com/docs/en/about-claude/pricing"
PRICES_CHECKED: str = catalogue()["prices_checked"]


@dataclass(frozen=True)
class Price:
    """List prices of one model, USD per million tokens."""

    input: float
    output: float
    cache_write: float  # a 5-minute cache write
    cache_read: float  # a cache hit or refresh
    cache_write_1h: float | None = None  # a 1-hour cache write; None: 2x input (prompt-caching.md)


def _price(rates: dict[str, float]) -> Price:
    return Price(
        input=rates["input"],
        output=rates["output"],
        cache_write=rates["cache_write_5m"],
        cache_read=rates["cache_read"],
        cache_write_1h=rates.get("cache_write_1h"),
    )


PRICES: dict[str, Price] = {model_id: _price(s.price) for s in specs() if s.price is not None for model_id in s.ids}
"""Every priced model id, aliases and dated ids alike, as in the catalogue."""


def price_for(model: str) -> Price | None:
    """The list price of a model id or its dated snapshot (`claude-haiku-4-5-20251001`), or None if unknown."""
    return PRICES.get(model)


@dataclass(frozen=True)
class Cost:
    """The cost of one request in USD, split the way the bill splits it."""

    model: str
    input_usd: float  # the uncached input tokens
    output_usd: float
    cache_usd: float  # cache writes and reads together
    cache_write_usd: float = 0.0  # the part of cache_usd spent writing the cache (5-minute and 1-hour)
    cache_read_usd: float = 0.0  # the part of cache_usd spent reading it
    uncached_usd: float | None = None  # what the same prompt and output would cost with no caching at all

    @property
    def total_usd(self) -> float:
        """Input, output and cache together."""
        return self.input_usd + self.output_usd + self.cache_usd

    @property
    def saved_usd(self) -> float:
        """What caching saved on this request against no caching (negative when a write cost more than it saved)."""
        return (self.uncached_usd if self.uncached_usd is not None else self.total_usd) - self.total_usd

    def __str__(self) -> str:
        return format_cost(self)


def _get(obj: Any, name: str) -> Any:
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _field(usage: Any, name: str) -> int:
    return int(_get(usage, name) or 0)


def _cache_writes(usage: Any) -> tuple[int, int]:
    """(5-minute, 1-hour) cache-write tokens; writes the breakdown does not account for count as 5-minute ones."""
    written = _field(usage, "cache_creation_input_tokens")
    split = _get(usage, "cache_creation")
    if split is None:
        return written, 0
    five, hour = _field(split, "ephemeral_5m_input_tokens"), _field(split, "ephemeral_1h_input_tokens")
    return max(written - hour, five), hour


def cost(usage: Any, model: str) -> Cost | None:
    """What `usage` (a message's `Usage`, or a dict like it) cost at `model`'s list price; None if unknown."""
    price = price_for(model)
    if price is None:
        return None
    per_token = 1 / 1_000_000
    five, hour = _cache_writes(usage)
    read = _field(usage, "cache_read_input_tokens")
    hour_rate = price.cache_write_1h if price.cache_write_1h is not None else 2 * price.input
    write_usd = (five * price.cache_write + hour * hour_rate) * per_token
    read_usd = read * price.cache_read * per_token
    input_usd = _field(usage, "input_tokens") * price.input * per_token
    output_usd = _field(usage, "output_tokens") * price.output * per_token
    return Cost(
        model=model,
        input_usd=input_usd,
        output_usd=output_usd,
        cache_usd=write_usd + read_usd,
        cache_write_usd=write_usd,
        cache_read_usd=read_usd,
        uncached_usd=input_usd + (five + hour + read) * price.input * per_token + output_usd,
    )


def format_cost(value: Cost | None) -> str:
    """A cost for people: `$0.000412`, or `unknown price` when the model has no known price."""
    if value is None:
        return "unknown price"
    return f"${value.total_usd:.6f}"
