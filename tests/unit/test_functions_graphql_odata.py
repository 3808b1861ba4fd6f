"""``graphql`` and ``odata`` functions against real services on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.services import Services, start_services
from tideflow.errors import FunctionCallError
from tideflow.runtime.functions import FunctionInvoker, Invocation
from tideflow.runtime.functions.graphql import build_document, literal, parse_operation
from tideflow.runtime.functions.odata import build_query


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with start_services() as running:
        yield running


@pytest.fixture
def svc(services: Services) -> Services:
    services.state.reset()
    return services


def test_graphql_literals_and_document() -> None:
    assert literal({"name": 'a "b"', "n": [1, 2.5, None, True]}) == (
        '{name: "a \\"b\\"", n: [1, 2.5, null, true]}'
    )
    assert build_document("query", "pet", {"id": 1}, "{ name }") == "query { pet(id: 1) { name } }"
    assert build_document("query", "pets", {}, "id") == "query { pets { id } }"
    assert parse_operation("http://x/graphql#mutation#addPet") == (
        "http://x/graphql",
        "mutation",
        "addPet",
    )
    with pytest.raises(FunctionCallError, match="query\\|mutation"):
        parse_operation("http://x/graphql#subscription#pet")


async def test_graphql_query_returns_the_field(svc: Services) -> None:
    call = Invocation(
        name="pet",
        type="graphql",
        operation=f"{svc.base_url}/graphql#query#pet",
        arguments={"id": 3},
        selection_set="{ id name tag }",
    )
    async with FunctionInvoker() as invoker:
        assert await invoker.invoke(call) == {"id": 3, "name": "Fido", "tag": "dog"}


async def test_graphql_mutation_with_an_input_object(svc: Services) -> None:
    call = Invocation(
        name="add",
        type="graphql",
        operation=f"{svc.base_url}/graphql#mutation#addPet",
        arguments={"input": {"name": "Nemo", "tag": "fish"}},
        selection_set="{ id name }",
    )
    async with FunctionInvoker() as invoker:
        assert await invoker.invoke(call) == {"id": 4, "name": "Nemo"}
    assert svc.state.pets[4]["tag"] == "fish"


async def test_graphql_errors_fail_the_call(svc: Services) -> None:
    call = Invocation(
        name="pet",
        type="graphql",
        operation=f"{svc.base_url}/graphql#query#pet",
        arguments={"id": "not a number"},
        selection_set="{ id }",
    )
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError, match="GraphQL error") as info:
            await invoker.invoke(call)
    assert info.value.code == "GraphQLError"


async def test_graphql_needs_a_selection_set(svc: Services) -> None:
    call = Invocation(name="pet", type="graphql", operation=f"{svc.base_url}/graphql#query#pet")
    async with FunctionInvoker() as invoker:
        with pytest.raises(FunctionCallError, match="selectionSet"):
            await invoker.invoke(call)


def test_odata_query_options_map_to_dollar_options() -> None:
    call = Invocation(
        name="p",
        type="odata",
        operation="http://x/odata#Products",
        arguments={
            "queryOptions": {
                "filter": "Category eq 'Food'",
                "orderBy": "Price desc",
                "top": 1,
                "count": True,
            }
        },
    )
    url, params = build_query(call)
    assert url == "http://x/odata/Products"
    assert params == [
        ("$filter", "Category eq 'Food'"),
        ("$orderby", "Price desc"),
        ("$top", "1"),
        ("$count", "true"),
    ]
    with pytest.raises(FunctionCallError, match="unknown OData query option 'where'"):
        build_query(
            Invocation(name="p", operation="http://x#P", arguments={"queryOptions": {"where": 1}})
        )


async def test_odata_collection_and_entity(svc: Services) -> None:
    collection = Invocation(
        name="p",
        type="odata",
        operation=f"{svc.base_url}/odata#Products",
        arguments={
            "queryOptions": {
                "filter": "Price gt 3",
                "select": "Name",
                "orderBy": "Price desc",
                "top": 2,
            }
        },
    )
    entity = Invocation(
        name="p", type="odata", operation=f"{svc.base_url}/odata#Products", arguments={"key": 3}
    )
    missing = Invocation(
        name="p", type="odata", operation=f"{svc.base_url}/odata#Products", arguments={"key": 30}
    )
    async with FunctionInvoker() as invoker:
        assert await invoker.invoke(collection) == {"value": [{"Name": "Chair"}, {"Name": "Lamp"}]}
        assert (await invoker.invoke(entity))["Name"] == "Lamp"
        with pytest.raises(FunctionCallError) as info:
            await invoker.invoke(missing)
    assert info.value.code == "404"
