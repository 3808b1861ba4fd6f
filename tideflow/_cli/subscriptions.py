"""``tideflow subscriptions``: thin shells over the subscriptions API."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tideflow._cli.common import (
    DEFAULT_SERVER,
    ServerOption,
    TokenOption,
    call_api,
    fail,
    print_json,
)

# --- subscriptions: thin shells over the subscriptions API ---

subscriptions_app = typer.Typer(
    help="Manage subscriptions (delivery to HTTP sinks).", no_args_is_help=True
)
SubscriptionArg = Annotated[str, typer.Argument(help="The subscription id.")]


def _subscription_body(
    spec: str | None, bus: str | None, sink: str | None, filters: list[str], sql: str | None
) -> dict[str, Any]:
    """The POST body: ``--spec`` (JSON text or @file) overridden by the other options."""
    import json
    from pathlib import Path

    body: dict[str, Any] = {}
    try:
        if spec:
            text = Path(spec[1:]).read_text("utf-8") if spec.startswith("@") else spec
            body = json.loads(text)
        extra = [json.loads(item) for item in filters]
    except (OSError, ValueError) as exc:
        raise fail(f"--spec/--filter: not valid JSON: {exc}", code=2) from None
    if not isinstance(body, dict):
        raise fail("--spec must be a JSON object", code=2)
    body |= {k: v for k, v in (("bus", bus), ("sink", sink)) if v is not None}
    extra += [{"sql": sql}] if sql else []
    if extra:
        body["filters"] = [*body.get("filters", []), *extra]
    return body


@subscriptions_app.command("create")
def subscriptions_create(
    bus: Annotated[str | None, typer.Option(help="The bus to read.")] = None,
    sink: Annotated[str | None, typer.Option(help="URL the events are POSTed to.")] = None,
    filter_: Annotated[
        list[str] | None,
        typer.Option("--filter", help='A filter object as JSON, e.g. {"prefix":{"type":"com."}}.'),
    ] = None,
    sql: Annotated[str | None, typer.Option(help="A CloudEvents SQL filter.")] = None,
    transform: Annotated[
        str | None, typer.Option(help="A jq expression: the delivered data.")
    ] = None,
    start: Annotated[
        str | None, typer.Option("--from", help="latest (default), earliest or an offset.")
    ] = None,
    delivery: Annotated[
        str | None, typer.Option(help='Delivery policy as JSON, e.g. {"retry":5,"ordered":true}.')
    ] = None,
    spec: Annotated[
        str | None, typer.Option(help="The whole subscription as JSON, or @file.json.")
    ] = None,
    header: Annotated[
        list[str] | None,
        typer.Option("--header", metavar="NAME=VALUE", help="A header sent with each delivery."),
    ] = None,
    secret_header: Annotated[
        list[str] | None,
        typer.Option(
            "--secret-header",
            metavar="NAME=SECRET",
            help="A header whose value is the secret SECRET (granted to sink:<host>); "
            "credentials must be given so.",
        ),
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Create a subscription; print it as JSON."""
    import json

    body = _subscription_body(spec, bus, sink, filter_ or [], sql)
    if header or secret_header:
        body["headers"] = {
            **body.get("headers", {}),
            **_pairs("--header", header or []),
            **{
                name: {"secret": secret}
                for name, secret in _pairs("--secret-header", secret_header or []).items()
            },
        }
    if transform is not None:
        body["transform"] = transform
    if start is not None:
        body["from"] = int(start) if start.isdigit() else start
    if delivery is not None:
        try:
            body["delivery"] = json.loads(delivery)
        except ValueError as exc:
            raise fail(f"--delivery: not valid JSON: {exc}", code=2) from None
    print_json(call_api(server, lambda client: client.create_subscription(body)))


def _pairs(option: str, texts: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` options as a mapping; exit 2 on one without ``=``."""
    pairs = {}
    for text in texts:
        name, sep, value = text.partition("=")
        if not sep or not name:
            raise fail(f"{option} {text!r}: write NAME=VALUE", code=2)
        pairs[name] = value
    return pairs


@subscriptions_app.command("list")
def subscriptions_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """List subscriptions: id, state, bus, committed offset, lag, sink."""
    found = call_api(server, lambda client: client.list_subscriptions())
    if as_json:
        print_json(found)
        return
    for sub in found:
        target = sub.get("sink") or "(internal)"
        print(
            f"{sub['id']}\t{sub['state']}\t{sub['bus']}\t"
            f"offset={sub['committedOffset']}\tlag={sub['lag']}\t{target}"
        )


@subscriptions_app.command("show")
def subscriptions_show(
    subscription_id: SubscriptionArg,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Show a subscription: state, committed offset, lag, delivered/failed/dead-lettered."""
    print_json(call_api(server, lambda client: client.get_subscription(subscription_id)))


@subscriptions_app.command("delete")
def subscriptions_delete(
    subscription_id: SubscriptionArg,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Delete a subscription."""
    call_api(server, lambda client: client.delete_subscription(subscription_id))
    print(f"deleted subscription {subscription_id}")


def _subscription_action(
    action: str, subscription_id: str, server: str, body: dict[str, Any] | None = None
) -> None:
    sub = call_api(server, lambda client: client.subscription_action(subscription_id, action, body))
    print(f"{sub['id']} {sub['state']} offset={sub['committedOffset']} lag={sub['lag']}")


@subscriptions_app.command("pause")
def subscriptions_pause(
    subscription_id: SubscriptionArg,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Pause delivery (events in flight are delivered again after resume)."""
    _subscription_action("pause", subscription_id, server)


@subscriptions_app.command("resume")
def subscriptions_resume(
    subscription_id: SubscriptionArg,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Resume delivery from the committed offset."""
    _subscription_action("resume", subscription_id, server)


@subscriptions_app.command("reset")
def subscriptions_reset(
    subscription_id: SubscriptionArg,
    offset: Annotated[int | None, typer.Option(min=0, help="Deliver next the event at it.")] = None,
    time: Annotated[
        str | None, typer.Option(help="Deliver next the first event stored at or after it.")
    ] = None,
    server: ServerOption = DEFAULT_SERVER,
    token: TokenOption = None,
) -> None:
    """Replay (or skip): move the subscription to an offset or a time (RFC 3339)."""
    if (offset is None) == (time is None):
        raise fail("give exactly one of --offset or --time", code=2)
    body: dict[str, Any] = {"offset": offset} if offset is not None else {"time": time}
    _subscription_action("reset", subscription_id, server, body)
