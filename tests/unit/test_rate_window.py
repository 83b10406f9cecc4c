"""The window rule: slot spacing and lateness budget keep every one-second window in the rate."""

from __future__ import annotations

import random

import pytest

from service.dispatch.limiter import (
    LATENESS_BUDGET_SECONDS,
    RATE_MARGIN,
    max_starts_per_window,
    window_rate,
    window_tolerance,
)
from tests.support.ses_stub import max_in_any_window


def worst_starts(rate: float, lateness: float, late_first: int) -> list[float]:
    """Slots at the closest spacing for 3 seconds; the first `late_first` start `lateness` late."""
    spacing = 1 / window_rate(rate)
    count = int(3 / spacing)
    return [i * spacing + (lateness if i < late_first else 0.0) for i in range(count)]


@pytest.mark.parametrize("rate", [1.0, 2.5, 14.0, 14.5, 100.0, 500.0, 999.0])
def test_worst_lateness_keeps_every_window(rate: float) -> None:
    """Sends late by the whole budget, then sends on time, never fill a window past the rate."""
    for late_first in range(int(2 * window_rate(rate)) + 1):
        starts = worst_starts(rate, LATENESS_BUDGET_SECONDS, late_first)
        assert max_in_any_window(starts) <= rate
    generator = random.Random(rate)
    spacing = 1 / window_rate(rate)
    starts = [i * spacing + generator.uniform(0, LATENESS_BUDGET_SECONDS) for i in range(3000)]
    assert max_in_any_window(starts) <= rate


@pytest.mark.parametrize("rate", [14.0, 100.0, 500.0])
def test_margin_is_what_bounds_lateness(rate: float) -> None:
    """Lateness 2 ms past what RATE_MARGIN allows can put one send too many in a window."""
    assert LATENESS_BUDGET_SECONDS < 1 / RATE_MARGIN - 1
    late = 1 / RATE_MARGIN - 1 + 0.002
    fullest = max(max_in_any_window(worst_starts(rate, late, k))
                  for k in range(int(window_rate(rate)) + 2))
    assert fullest == int(rate) + 1


def test_bound_holds_for_every_rate() -> None:
    """ceil((1 + budget) * spaced rate) stays within the rate, fractional rates included."""
    for tenths in range(10, 20_001):
        rate = tenths / 10
        assert max_starts_per_window(rate) <= rate


def test_round_trip_comes_out_of_the_tolerance() -> None:
    assert window_tolerance(0.0) == LATENESS_BUDGET_SECONDS
    assert window_tolerance(0.004) == pytest.approx(LATENESS_BUDGET_SECONDS - 0.004)
