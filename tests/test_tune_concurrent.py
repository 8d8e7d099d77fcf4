"""Workers sharing one study (`edgecls tune --storage`): they draw apart, and a worker that
draws the candidate another worker is training waits for its result instead of training it
too. Real Optuna on a real SQLite storage; two ``Search`` objects stand for two workers."""

from __future__ import annotations

import pytest

from edgecls.tune.study import STATE_COMPLETE, open_search

pytest.importorskip("optuna")


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite file for the module (its schema takes a second or two to create); each
    test opens studies of its own names in it."""
    return f"sqlite:///{tmp_path_factory.mktemp('concurrent') / 'study.db'}"


def _draw(handle) -> tuple[int, ...]:
    return tuple(handle.choose(name, list(range(100))) for name in ("a", "b", "c"))


def test_workers_given_one_seed_draw_apart_and_the_seed_still_decides(url: str) -> None:
    """Same --seed on two workers: trial n's draws come from (seed, n), not from how many
    trials the process asked before, so the workers' first trials differ."""
    first, second = (open_search(url, "seeded", local=False, seed=0) for _ in range(2))
    on_first, on_second = first.ask(), second.ask()  # both running at once
    drawn = {on_first.number: _draw(on_first), on_second.number: _draw(on_second)}
    assert drawn[0] != drawn[1]

    alone = open_search(url, "alone", local=True, seed=0)
    for number in (0, 1):  # one worker, one trial after the other: the same draws
        handle = alone.ask()
        assert _draw(handle) == drawn[number]
        alone.tell(handle, STATE_COMPLETE, 0.5)
    other = open_search(url, "other-seed", local=True, seed=1).ask()
    assert _draw(other) != drawn[0]
