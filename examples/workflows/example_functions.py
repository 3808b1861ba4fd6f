"""Python functions the example workflows call as ``python:example_functions:NAME``.

Each takes the evaluated arguments as one dict. A function fails by raising;
the workflow error's code is the exception's ``code`` attribute (else its
class name).
"""

from __future__ import annotations

import asyncio
from typing import Any


class PaymentDeclined(Exception):
    """The card was declined (workflow error code ``DECLINED``)."""

    code = "DECLINED"
    retryable = False


def total(args: dict[str, Any]) -> dict[str, Any]:
    """Sum the order lines."""
    amount = sum(line["price"] * line["quantity"] for line in args["lines"])
    return {"total": round(amount, 2)}


async def shipping_quote(args: dict[str, Any]) -> dict[str, Any]:
    """An async function: a flat rate per kilogram."""
    await asyncio.sleep(0)
    return {"carrier": "tide-post", "cost": round(2.5 + 1.2 * args["weightKg"], 2)}


def charge(args: dict[str, Any], idempotency_key: str | None = None) -> dict[str, Any]:
    """Charge a card; cards ending in 0000 are declined."""
    if str(args["card"]).endswith("0000"):
        raise PaymentDeclined(f"card ending {str(args['card'])[-4:]} declined")
    return {
        "charged": args["amount"],
        "receipt": f"R-{args['amount']}",
        "keyed": bool(idempotency_key),
    }


def reserve(args: dict[str, Any]) -> dict[str, Any]:
    """Reserve something; 'sold-out' items cannot be reserved."""
    if args["item"] == "sold-out":
        raise LookupError(f"{args['item']} is not available")
    return {"reserved": args["item"]}


def cancel(args: dict[str, Any]) -> dict[str, Any]:
    """Undo a reservation."""
    return {"cancelled": args["item"]}


async def slow(args: dict[str, Any]) -> dict[str, Any]:
    """Take ``seconds`` to answer."""
    await asyncio.sleep(args["seconds"])
    return {"slept": args["seconds"]}


def square(args: dict[str, Any]) -> int:
    """The square of ``n``."""
    return int(args["n"]) ** 2


def score(args: dict[str, Any]) -> dict[str, Any]:
    """A credit score from an applicant's income."""
    return {"score": min(850, 300 + int(args["income"]) // 200)}
