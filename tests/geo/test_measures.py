"""Measures: presets, safe parsing, clear errors, NaN on zero population."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from geo.census import KS201_KEYS
from geo.measures import PRESETS, MeasureError, compile_measure, evaluate

COLUMNS_2011 = [*KS201_KEYS, "mixed"]
BROAD_2021 = ["total", "asian", "black", "mixed", "white", "other_ethnic"]


def _counts() -> pd.DataFrame:
    rows = {
        "A": dict.fromkeys(COLUMNS_2011, 0)
        | {
            "total": 100,
            "white_british": 40,
            "white_other": 10,
            "bangladeshi": 30,
            "black_african": 20,
        },
        "B": dict.fromkeys(COLUMNS_2011, 0),  # nobody lives here
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def test_presets_on_2011_counts() -> None:
    counts = _counts()
    values = {
        name: evaluate(compile_measure(name, counts.columns), counts)
        for name in (
            "bame_share",
            "ethnic_minority_share",
            "bangladeshi_share",
            "black_african_share",
            "asian_share",
            "black_share",
            "white_share",
        )
    }
    assert values["bame_share"]["A"] == pytest.approx(0.5)
    assert values["ethnic_minority_share"]["A"] == pytest.approx(0.6)
    assert values["bangladeshi_share"]["A"] == pytest.approx(0.3)
    assert values["black_african_share"]["A"] == pytest.approx(0.2)
    assert values["asian_share"]["A"] == pytest.approx(0.3)
    assert values["white_share"]["A"] == pytest.approx(0.5)
    for series in values.values():
        assert np.isnan(series["B"])  # zero population: undefined, not an error


def test_bame_share_columns_documented() -> None:
    m = compile_measure("bame_share", COLUMNS_2011)
    assert set(m.columns) == {
        "mixed",
        "indian",
        "pakistani",
        "bangladeshi",
        "chinese",
        "asian_other",
        "black_african",
        "black_caribbean",
        "black_other",
        "arab",
        "other_ethnic",
        "total",
    }
    assert not set(m.columns) & {
        "white_british",
        "white_irish",
        "white_gypsy_traveller",
        "white_other",
    }
    broad = compile_measure("bame_share", BROAD_2021)
    assert broad.formula == "(total - white) / total"
    for name in ("indian_share", "pakistani_share", "black_caribbean_share", "chinese_share"):
        assert name in PRESETS


def test_ethnic_minority_share_needs_white_british() -> None:
    with pytest.raises(MeasureError, match="cannot separate White British"):
        compile_measure("ethnic_minority_share", BROAD_2021)
    with pytest.raises(MeasureError, match="needs columns"):
        compile_measure("bangladeshi_share", BROAD_2021)


def test_custom_formula() -> None:
    counts = _counts()
    m = compile_measure("(bangladeshi + black_african) / total * 100", counts.columns)
    assert m.columns == ("bangladeshi", "black_african", "total")
    assert evaluate(m, counts)["A"] == pytest.approx(50.0)
    assert evaluate(compile_measure("-white_british + 1", counts.columns), counts)["A"] == -39


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("bangladeshi / totl", "unknown column 'totl'"),
        ("(bangladeshi / total", "syntax error"),
        ("bangladeshi / (2 - 2)", "divides by a constant zero"),
        ("bangladeshi / 0", "divides by a constant zero"),
        ("__import__('os').system('id')", "Call is not allowed"),
        ("total.__class__", "Attribute is not allowed"),
        ("total ** 2", "Pow is not allowed"),
        ("total if total else 1", "IfExp is not allowed"),
        ("'a' + total", "only numbers"),
        ("", "empty measure"),
        ("nonsense_share", "unknown preset"),
    ],
)
def test_measure_errors_are_clear(formula: str, message: str) -> None:
    with pytest.raises(MeasureError, match=message):
        compile_measure(formula, COLUMNS_2011)


def test_division_by_a_column_expression_is_allowed() -> None:
    counts = _counts()
    m = compile_measure("bangladeshi / (total - white_british - 60)", counts.columns)
    values = evaluate(m, counts)
    assert np.isnan(values["A"])  # 100 - 40 - 60 == 0 for this row: NaN, not an error
