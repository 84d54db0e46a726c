"""Targeting measures: named formulas over canonical census columns, parsed safely.

A formula may use only canonical column names (see `geo.census`), numbers,
`+ - * /`, unary minus and parentheses. It is parsed with `ast` against that
whitelist and evaluated on numpy arrays; nothing is ever `eval`-ed. Division by
an area's zero value gives NaN (such areas are left out of rankings); dividing
by a constant zero is rejected when compiling.

Presets (the first variant whose columns are all available is used):

- `bame_share`: every group outside the White groups, over total.
  2011: (mixed + indian + pakistani + bangladeshi + chinese + asian_other +
  black_african + black_caribbean + black_other + arab + other_ethnic) / total,
  i.e. all groups except white_british, white_irish, white_gypsy_traveller,
  white_other. 2021 broad: (total - white) / total.
- `ethnic_minority_share` (ONS usage, White minorities included):
  (total - white_british) / total. The 2021 broad table has no White British
  column, so this preset fails there with a clear error.
- `asian_share` 2011: (indian + pakistani + bangladeshi + chinese + asian_other) / total;
  2021 broad: asian / total.
- `black_share` 2011: (black_african + black_caribbean + black_other) / total;
  2021 broad: black / total.
- `mixed_share`: mixed / total. `white_share` 2011: (white_british + white_irish +
  white_gypsy_traveller + white_other) / total; 2021: white / total.
- single groups `<group>_share` = <group> / total for bangladeshi, black_african,
  indian, pakistani, black_caribbean, chinese, asian_other, black_other, arab,
  other_ethnic, white_british, white_irish, white_other, white_gypsy_traveller
  and the four detailed mixed groups.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

_NON_WHITE_2011 = (
    "mixed + indian + pakistani + bangladeshi + chinese + asian_other"
    " + black_african + black_caribbean + black_other + arab + other_ethnic"
)

PRESETS: dict[str, tuple[tuple[str, str], ...]] = {
    # name -> ((formula, description), ...) tried in order.
    "bame_share": (
        (
            f"({_NON_WHITE_2011}) / total",
            "2011: all groups except the four White groups, over total",
        ),
        ("(total - white) / total", "2021 broad: total minus White, over total"),
    ),
    "ethnic_minority_share": (
        ("(total - white_british) / total", "all groups except White British, over total"),
    ),
    "asian_share": (
        ("(indian + pakistani + bangladeshi + chinese + asian_other) / total", "2011 Asian groups"),
        ("asian / total", "2021 broad Asian"),
    ),
    "black_share": (
        ("(black_african + black_caribbean + black_other) / total", "2011 Black groups"),
        ("black / total", "2021 broad Black"),
    ),
    "mixed_share": (("mixed / total", "Mixed or multiple ethnic groups"),),
    "white_share": (
        (
            "(white_british + white_irish + white_gypsy_traveller + white_other) / total",
            "2011 White",
        ),
        ("white / total", "2021 broad White"),
    ),
}
for _group in (
    "bangladeshi",
    "black_african",
    "indian",
    "pakistani",
    "black_caribbean",
    "chinese",
    "asian_other",
    "black_other",
    "arab",
    "other_ethnic",
    "white_british",
    "white_irish",
    "white_other",
    "white_gypsy_traveller",
    "mixed_white_black_caribbean",
    "mixed_white_black_african",
    "mixed_white_asian",
    "mixed_other",
):
    PRESETS[f"{_group}_share"] = ((f"{_group} / total", f"{_group} over total"),)

_BROAD_ONLY_HINT = {
    "ethnic_minority_share": (
        "the 2021 broad ethnic-group table has only a single White column, so it cannot separate "
        "White British from other White groups; use bame_share or a detailed TS021 table"
    ),
}

_ALLOWED_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div)
MAX_FORMULA_LENGTH = 2000


class MeasureError(ValueError):
    """A measure that cannot be compiled: unknown preset or column, bad syntax, constant zero divisor."""


@dataclass(frozen=True)
class Measure:
    """A compiled, safe formula: its name, text, the columns it reads and a parsed expression."""

    name: str
    formula: str
    columns: tuple[str, ...]
    description: str
    expression: ast.expr

    def __hash__(self) -> int:
        return hash((self.name, self.formula))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Measure) and (self.name, self.formula) == (
            other.name,
            other.formula,
        )


def _check(node: ast.AST, available: set[str], used: list[str], text: str) -> None:
    """Walk the AST, allowing only names, numbers, + - * /, unary +/-; collect names used."""
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, _ALLOWED_BINOPS):
            raise MeasureError(
                f"operator {type(node.op).__name__} is not allowed in {text!r}; use only + - * / and parentheses"
            )
        _check(node.left, available, used, text)
        _check(node.right, available, used, text)
        if isinstance(node.op, ast.Div) and not _names_in(node.right):
            value = _constant_value(node.right)
            if value == 0:
                raise MeasureError(
                    f"formula {text!r} divides by a constant zero ({ast.unparse(node.right)})"
                )
        return
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd | ast.USub):
        _check(node.operand, available, used, text)
        return
    if isinstance(node, ast.Constant):
        if isinstance(node.value, bool) or not isinstance(node.value, int | float):
            raise MeasureError(
                f"only numbers are allowed as constants in {text!r}, not {node.value!r}"
            )
        return
    if isinstance(node, ast.Name):
        if node.id not in available:
            raise MeasureError(
                f"unknown column {node.id!r} in {text!r}; available columns: {', '.join(sorted(available))}"
            )
        if node.id not in used:
            used.append(node.id)
        return
    raise MeasureError(
        f"{type(node).__name__} is not allowed in {text!r}; use column names, numbers, + - * / and parentheses"
    )


def _names_in(node: ast.AST) -> bool:
    """Whether an expression mentions any column."""
    return any(isinstance(n, ast.Name) for n in ast.walk(node))


def _constant_value(node: ast.AST) -> float:
    """Value of a column-free expression (already whitelisted); inf/NaN on division by zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(_evaluate_node(node, {}, 1)[0])


def compile_measure(formula_or_preset: str, available_columns: Iterable[str]) -> Measure:
    """Compile a preset name or a formula against the columns a census table actually has."""
    available = set(available_columns)
    text = (formula_or_preset or "").strip()
    if not text:
        raise MeasureError("empty measure: give a preset name or a formula")
    if len(text) > MAX_FORMULA_LENGTH:
        raise MeasureError(f"formula longer than {MAX_FORMULA_LENGTH} characters")
    if text in PRESETS:
        missing_by_variant = []
        for formula, description in PRESETS[text]:
            tree = ast.parse(formula, mode="eval")
            names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
            missing = sorted(names - available)
            if not missing:
                return _compile(text, formula, description, available)
            missing_by_variant.append(missing)
        hint = _BROAD_ONLY_HINT.get(text, "")
        if hint and "white_british" not in available:
            raise MeasureError(f"preset {text!r} is not available for this table: {hint}")
        raise MeasureError(
            f"preset {text!r} needs columns this table lacks: "
            + " or ".join(", ".join(m) for m in missing_by_variant)
        )
    if text.isidentifier() and text not in available and text.endswith("_share"):
        raise MeasureError(f"unknown preset {text!r}; presets: {', '.join(sorted(PRESETS))}")
    return _compile(text, text, "custom formula", available)


def _compile(name: str, formula: str, description: str, available: set[str]) -> Measure:
    """Parse and whitelist-check one formula."""
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError as exc:
        raise MeasureError(
            f"syntax error in formula {formula!r}: {exc.msg} at column {exc.offset}"
        ) from None
    used: list[str] = []
    _check(tree.body, available, used, formula)
    return Measure(
        name=name,
        formula=formula,
        columns=tuple(used),
        description=description,
        expression=tree.body,
    )


def _evaluate_node(node: ast.AST, columns: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Evaluate a whitelisted expression over float arrays; x/0 gives NaN."""
    if isinstance(node, ast.BinOp):
        left = _evaluate_node(node.left, columns, n)
        right = _evaluate_node(node.right, columns, n)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        out = np.full(np.broadcast(left, right).shape, np.nan)
        np.divide(left, right, out=out, where=right != 0)
        return out
    if isinstance(node, ast.UnaryOp):
        value = _evaluate_node(node.operand, columns, n)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Constant):
        return np.full(n, float(node.value))
    if isinstance(node, ast.Name):
        return columns[node.id]
    raise MeasureError(f"cannot evaluate {type(node).__name__}")  # unreachable after _check


def evaluate(measure: Measure, counts_df: pd.DataFrame) -> pd.Series:
    """Evaluate a compiled measure on every row of a counts frame (NaN where a divisor is zero)."""
    missing = [c for c in measure.columns if c not in counts_df.columns]
    if missing:
        raise MeasureError(
            f"measure {measure.name!r} needs columns missing from the data: {missing}"
        )
    columns = {c: counts_df[c].to_numpy(dtype=float) for c in measure.columns}
    values = _evaluate_node(measure.expression, columns, len(counts_df))
    return pd.Series(values, index=counts_df.index, name=measure.name)
