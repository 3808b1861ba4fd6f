"""Stand-ins for the services the SonataFlow corpus calls (``tideflow run --functions``).

Each callable replaces the function definition of the same name, whatever its
type (``service:java``, ``rest:``, an OpenAPI operation, ``script:python``),
and answers as the service it stands for would: a JSON object that SonataFlow
merges into the state data.
"""

from __future__ import annotations

from typing import Any

PRICES = {"apple": 1.5, "pear": 2.0, "plum": 0.5}
CONTINENTS = {"PT": "Europe", "BR": "South America", "JP": "Asia"}


class Declined(Exception):
    """A payment service's refusal: the workflow sees error code ``DECLINED``."""

    code = "DECLINED"


def greet(args: dict[str, Any]) -> dict[str, Any]:
    return {"greeting": f"Hello {args.get('name')}"}


def getPrice(args: dict[str, Any]) -> dict[str, Any]:
    return {"price": PRICES.get(args["item"], 0.0)}


def square(args: dict[str, Any]) -> dict[str, Any]:
    return {"square": args["n"] * args["n"]}


def increment(args: dict[str, Any]) -> dict[str, Any]:
    return {"value": args["value"] + 1}


def echo(args: dict[str, Any]) -> dict[str, Any]:
    return {"echoed": args}


def creditCheck(args: dict[str, Any]) -> dict[str, Any]:
    return {"approved": args["amount"] < 1000}


def countryInfo(args: dict[str, Any]) -> dict[str, Any]:
    return {"continent": CONTINENTS.get(args["country"], "unknown")}


def charge(args: dict[str, Any]) -> dict[str, Any]:
    if args["amount"] > 500:
        raise Declined(f"amount {args['amount']} over the card's limit")
    return {"charged": args["amount"]}


def reserve(args: dict[str, Any]) -> dict[str, Any]:
    return {"reservation": {"sku": args["sku"], "qty": args["qty"], "status": "held"}}


def createOrder(args: dict[str, Any]) -> dict[str, Any]:
    return {"orderId": f"o-{args['customer']}-{len(args['lines'])}", "state": "created"}


def getOrder(args: dict[str, Any]) -> dict[str, Any]:
    return {"order": {"id": args["orderId"], "total": 42}}


def sumNumbers(args: dict[str, Any]) -> dict[str, Any]:
    return {"sum": sum(args["numbers"])}


def wordCount(args: dict[str, Any]) -> dict[str, Any]:
    return {"words": len(str(args["text"]).split())}


def score(args: dict[str, Any]) -> dict[str, Any]:
    return {"score": len(args["name"]) * 10}


def shout(args: dict[str, Any]) -> dict[str, Any]:
    return {"shout": str(args["body"]).upper()}


def splitWords(args: dict[str, Any]) -> list[str]:
    return str(args["text"]).split()
