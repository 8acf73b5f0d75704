"""Route ownership and the connection cap, without a server (issue 11)."""

from __future__ import annotations

from typing import Any

import pytest

from faasbox.errors import ResourceConflict
from faasbox.gateway.edge_limits import EdgeLimits
from faasbox.gateway.routes import claim_routes
from faasbox.registry.models import FunctionConfig


def fn(name: str, service: str, *events: dict[str, Any]) -> FunctionConfig:
    return FunctionConfig(name=name, handler="h.h", service=service, events=list(events))


ITEMS = fn(
    "items-get",
    "items-api",
    {"httpApi": "GET /items/{id}"},
    {"httpApi": "DELETE /items/{id}"},
    {"httpApi": "GET /health"},
)


def test_free_routes_are_claimed() -> None:
    assert claim_routes([ITEMS], [fn("other", "b", {"httpApi": "GET /other"})], False) == ({}, [])


@pytest.mark.parametrize("route", ["GET /items/{id}", "GET /items/{itemId}", "POST /items/{x}"])
def test_another_services_route_is_refused_naming_both(route: str) -> None:
    with pytest.raises(ResourceConflict) as caught:
        claim_routes([ITEMS], [fn("bad-get", "bad", {"httpApi": route})], False)
    message = caught.value.message
    assert message.startswith("Service bad cannot take routes of service items-api: ")
    assert "bad-get (service bad)" in message and "items-get (service items-api)" in message


def test_force_drops_every_event_holding_the_place() -> None:
    remaining, moved = claim_routes(
        [ITEMS], [fn("bad-get", "bad", {"httpApi": "GET /items/{itemId}"})], True
    )
    # Both {id} routes held the place of {itemId}; the health route stays.
    assert remaining == {"items-get": [{"httpApi": "GET /health"}]}
    assert moved == [
        "route GET /items/{id} from items-get (service items-api)",
        "route DELETE /items/{id} from items-get (service items-api)",
    ]


def test_a_conflict_inside_one_deploy_is_refused_even_with_force() -> None:
    a = fn("a", "svc", {"http": "GET /x/{a}"})
    b = fn("b", "svc", {"httpApi": "GET /x/{b}"})
    with pytest.raises(ResourceConflict, match="Two routes of service svc conflict"):
        claim_routes([], [a, b], True)


@pytest.mark.parametrize(
    ("fd_limit", "wanted", "cap"),
    [(20_000, None, 10_000), (1_048_576, 50_000, 50_000), (4096, None, 2048), (1024, 5000, 512)],
)
def test_the_connection_cap_stays_below_the_fd_limit(
    fd_limit: int, wanted: int | None, cap: int
) -> None:
    assert EdgeLimits(max_connections=wanted).connection_cap(fd_limit) == cap
