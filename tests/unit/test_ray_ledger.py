"""The cluster-wide concurrency ledger's counting, without a cluster: whether an actor name
is still alive is Ray's answer (ray.get_actor), given here by a set of live names."""

from __future__ import annotations

import pytest

pytest.importorskip("ray")

from faasbox.execution.ray import ledger as ledger_module
from faasbox.execution.ray.ledger import ConcurrencyLedger


@pytest.fixture
def alive(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    names: set[str] = set()

    def get_actor(name: str, namespace: str | None = None) -> str:
        if name not in names:
            raise ValueError(f"Failed to look up actor {name}")
        return name

    monkeypatch.setattr(ledger_module.ray, "get_actor", get_actor)
    return names


def test_reserved_limit_counts_every_gateways_environments(alive: set[str]) -> None:
    book = ConcurrencyLedger()
    alive.update({"a", "b"})
    assert book.claim("a", 2) and book.claim("b", 2)
    assert not book.claim("c", 2)  # both still alive: the third waits
    book.release("a")
    assert book.claim("c", 2)
    assert book.count() == 2


def test_claims_of_dead_actors_are_pruned_when_full(alive: set[str]) -> None:
    book = ConcurrencyLedger()
    assert book.claim("gone", 1)
    book.confirm("gone")  # its actor was made; then its gateway died without releasing it
    alive.add("new")
    assert book.claim("new", 1)
    assert book.claims == {"new": False}


def test_a_claim_whose_actor_is_not_made_yet_is_kept_for_a_while(alive: set[str]) -> None:
    book = ConcurrencyLedger()
    assert book.claim("making", 1)  # its gateway ships the code before it names the actor
    assert not book.claim("other", 1)
    book.pending["making"] -= ledger_module.PENDING_S  # as if claimed that long ago
    assert book.claim("other", 1)  # never made: its gateway died before it could
    assert book.claims == {"other": False}


def test_provisioned_claims_are_counted_apart(alive: set[str]) -> None:
    book = ConcurrencyLedger()
    alive.update({"p1", "p2", "x"})
    assert book.claim("p1", None, provisioned=1)
    assert not book.claim("p2", None, provisioned=1)  # one kept warm cluster-wide
    assert book.claim("x", None)  # on-demand environments are not limited by it


def test_a_refused_on_demand_claim_says_a_gateway_waits(alive: set[str]) -> None:
    book = ConcurrencyLedger()
    alive.update({"held", "p", "q"})
    assert book.claim("held", 1) and not book.wanted()
    assert not book.claim("p", None, provisioned=0)  # a provisioned start waits for no one
    assert not book.wanted()
    assert not book.claim("q", 1)  # another gateway's request waits for `held`
    assert book.wanted()
    book.refused_at -= ledger_module.WANTED_S  # as long ago as the flag lasts
    assert not book.wanted()
