"""The numpy fast paths of products and UPPER / LOWER are taken from FAST_PATH_MIN_ROWS rows
on (where they pay), Arrow's kernels below; both ways give the same values."""
from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from runtime.transform import decimal64, functions
from runtime.transform.expr import Env, compile_expr, parse

SMALL = functions.FAST_PATH_MIN_ROWS - 1
BIG = functions.FAST_PATH_MIN_ROWS


def _amounts(n: int) -> pa.Array:
    return pa.array([None if i % 7 == 3 else Decimal(i * 37 - 500) / 100 for i in range(n)],
                    pa.decimal128(12, 2))


def _statuses(n: int) -> pa.Array:
    return pa.array([None if i % 5 == 1 else ("paid", "cancelled", "sent")[i % 3]
                     for i in range(n)], pa.string())


@pytest.mark.parametrize("n", [0, 1, 16, SMALL, BIG, 3 * BIG])
def test_both_ways_give_arrows_values(n: int) -> None:
    env = Env(n, {"amount": _amounts(n), "status": _statuses(n)})
    lit = pa.scalar(100, pa.decimal128(3, 0))
    assert compile_expr(parse("amount * 100")).evaluate(env).equals(
        pc.multiply(env.columns["amount"], lit))
    assert compile_expr(parse("UPPER(status)")).evaluate(env).equals(
        pc.utf8_upper(env.columns["status"]))
    assert compile_expr(parse("LOWER(status)")).evaluate(env).equals(
        pc.utf8_lower(env.columns["status"]))


@pytest.mark.parametrize("n,fast", [(0, False), (16, False), (SMALL, False), (BIG, True)])
def test_fast_paths_only_from_the_threshold(n: int, fast: bool,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    used: list[str] = []
    real_ascii = functions._is_ascii  # noqa: SLF001

    def is_ascii(v: pa.Array) -> bool:
        used.append("ascii")
        return real_ascii(v)

    def product(a: object, b: object) -> pa.Array | None:
        used.append("multiply")
        return decimal64.multiply(a, b)

    monkeypatch.setattr(functions, "_is_ascii", is_ascii)
    env = Env(n, {"amount": _amounts(n), "status": _statuses(n)})
    compile_expr(parse("UPPER(status)")).evaluate(env)
    mul = functions.arithmetic(pc.multiply_checked, pc.multiply, product)
    lit = pa.scalar(100, pa.decimal128(3, 0))
    assert mul(env.columns["amount"], lit).equals(pc.multiply(env.columns["amount"], lit))
    assert mul(lit, env.columns["amount"]).equals(pc.multiply(lit, env.columns["amount"]))
    assert used == (["ascii", "multiply", "multiply"] if fast else [])
