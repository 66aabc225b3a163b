"""How a request stream's requests compose into stages (:mod:`fubench.stream` states
the rules): each request is built by its own kind on the same data and partition, and
each stage holds what the clients hold when its request arrives, what they keep after
it, and the request restricted to what they still hold."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from fubench.api import ScenarioKind
from fubench.scenario import Dataset, ForgetRequest, ScenarioSetup, Split

#: the keys of a request besides its kind's own parameters
ROUND, KIND = "round", "kind"


@dataclass
class Stage:
    """Request ``index`` (1-based) of a stream: it arrives at ``round``, is of kind
    ``kind_name`` (built by ``kind``), and ``setup`` is the federation as it stands
    then: ``train`` what the clients hold when it arrives, ``retained`` what they keep
    once it is honoured (the gold standard's data: everything forgotten so far left
    out), ``request`` the request restricted to what they still hold, ``eval_sets``
    the kind's own (``forget``: the samples this request removes)."""

    index: int
    round: int
    kind_name: str
    kind: ScenarioKind
    setup: ScenarioSetup


def compose(
    kinds: list[tuple[int, str, ScenarioKind]],
    data: Dataset,
    partition: list[torch.Tensor],
    generator: torch.Generator,
) -> list[Stage]:
    """The stages of the requests ``kinds`` ((round, kind name, kind) each), built on
    ``data`` and ``partition``. Each kind draws from a generator of its own, seeded from
    ``generator`` in request order, as does the seed of its attacks."""
    clients = [Split(data.x_train[idx], data.y_train[idx]) for idx in partition]
    built = []
    for i, (rounds, name, kind) in enumerate(kinds):
        build_seed, attack_seed = torch.randint(0, 2**62, (2,), generator=generator).tolist()
        setup = kind.build(data, partition, torch.Generator().manual_seed(build_seed))
        if setup.attack_seed is None:
            setup.attack_seed = attack_seed % (2**31 - 1)
        setup.forgotten_behaviour = kind.forgotten_behaviour  # each request's own
        built.append((rounds, name, kind, _composable(setup, clients, i, name)))
    held = [torch.ones(len(split), dtype=torch.bool) for split in clients]
    data_of = _data_of(clients, [(i, name, setup) for i, (_, name, _, setup) in enumerate(built)])
    stages = []
    for i, (rounds, name, kind, setup) in enumerate(built):
        stage_setup, held = _stage(setup, data_of, held, i, name)
        stages.append(Stage(i + 1, rounds, name, kind, stage_setup))
    return stages


def _composable(setup: ScenarioSetup, clients: list[Split], i: int, name: str) -> ScenarioSetup:
    """``setup`` when it removes samples and keeps every client's samples in place."""
    where = f"scenario.requests[{i}]"
    if setup.reference is not None:
        raise ValueError(
            f"{where}: kind '{name}' prepares other data for the gold standard (a "
            f"feature to replace, not samples to remove); a stream composes requests "
            f"that remove samples"
        )
    if len(setup.train) != len(clients) or any(
        len(a) != len(b) for a, b in zip(setup.train, clients)
    ):
        raise ValueError(
            f"{where}: kind '{name}' does not keep every client's samples in place; a "
            f"stream composes requests that mark samples to remove"
        )
    return setup


def _changed(a: Split, b: Split) -> bool:
    return not (torch.equal(a.x, b.x) and torch.equal(a.y, b.y))


def _data_of(clients: list[Split], built: list[tuple[int, str, ScenarioSetup]]) -> list[Split]:
    """What each client trains on from round 0: its share of the data, or what the one
    request that changes it (a backdoor's poisoning) made of it."""
    data = list(clients)
    changed_by: dict[int, tuple[int, str]] = {}
    for i, name, setup in built:
        for c, split in enumerate(setup.train):
            if not _changed(split, clients[c]):
                continue
            if c in changed_by:
                j, other = changed_by[c]
                raise ValueError(
                    f"scenario.requests[{i}]: kind '{name}' changes client {c}'s data, which "
                    f"scenario.requests[{j}] ('{other}') changes already; at most one request "
                    f"may change a client's data"
                )
            changed_by[c] = (i, name)
            data[c] = split
    return data


def _stage(
    setup: ScenarioSetup, data_of: list[Split], held: list[torch.Tensor], i: int, name: str
) -> tuple[ScenarioSetup, list[torch.Tensor]]:
    """Request ``i``'s setup on what the clients still hold (``held``: per client, which
    of its samples), and what they hold after it."""
    n = len(data_of)
    masks, after = {}, []
    for c in range(n):
        mask = setup.request.forget_masks.get(c)
        mask = torch.zeros_like(held[c]) if mask is None else mask.cpu().bool()
        after.append(held[c] & ~mask)
        if bool((mask & held[c]).any()):
            masks[c] = mask[held[c]]  # over what the client holds now
    if not masks:
        raise ValueError(
            f"scenario.requests[{i}]: the '{name}' request forgets nothing the clients still hold "
            f"(earlier requests removed all of it)"
        )
    train = [data_of[c].subset(held[c]) for c in range(n)]
    retained = [data_of[c].subset(after[c]) for c in range(n)]
    old = setup.request
    request = ForgetRequest(
        clients=tuple(sorted(masks)),
        forget_masks=masks,
        target_class=old.target_class,
        feature_mask=old.feature_mask,
        description=old.description,
        feature=old.feature,
    )
    forget = Split.concat([train[c].subset(m) for c, m in sorted(masks.items())])
    info = {
        **setup.info,
        "forgotten_samples": len(forget),
        "forgotten_clients": sorted(masks),
    }
    stage = ScenarioSetup(
        train=train,
        retained=retained,
        request=request,
        eval_sets={**setup.eval_sets, "forget": forget},
        default_metrics=list(setup.default_metrics),
        info=info,
        attack_seed=setup.attack_seed,
        forgotten_behaviour=setup.forgotten_behaviour,
    )
    return stage, after


def summary(stages: list[Stage]) -> ScenarioSetup:
    """Every request of ``stages`` honoured at once: the clients' data from round 0,
    what they keep after the last request, and one request covering all of them (its
    target class and feature where the requests agree on one), with each request's
    evaluation sets (``forget``: everything forgotten) and the metrics every request
    lists."""
    first, last = stages[0].setup, stages[-1].setup
    n = len(first.train)
    masks: dict[int, torch.Tensor] = {}
    for c in range(n):
        kept = torch.zeros(len(first.train[c]), dtype=torch.bool)
        kept[_positions(stages, c)] = True
        if not bool(kept.all()):
            masks[c] = ~kept
    requests = [stage.setup.request for stage in stages]
    eval_sets: dict[str, Split] = {}
    for stage in stages:
        for key, split in stage.setup.eval_sets.items():
            eval_sets.setdefault(key, split)
    eval_sets["forget"] = Split.concat([first.train[c].subset(m) for c, m in sorted(masks.items())])
    shared = [m for m in first.default_metrics if all(m in s.setup.default_metrics for s in stages)]
    return ScenarioSetup(
        train=list(first.train),
        retained=list(last.retained),
        request=ForgetRequest(
            clients=tuple(sorted(masks)),
            forget_masks=masks,
            target_class=_agreed([r.target_class for r in requests]),
            feature_mask=_agreed_tensor([r.feature_mask for r in requests]),
            description="; ".join(
                f"round {s.round}: {s.setup.request.description}" for s in stages
            ),
        ),
        eval_sets=eval_sets,
        default_metrics=shared,
        info={"requests": [_stage_info(stage) for stage in stages]},
        attack_seed=first.attack_seed,
    )


def _positions(stages: list[Stage], client: int) -> torch.Tensor:
    """The positions, in ``client``'s data from round 0, of what it keeps at the end."""
    positions = torch.arange(len(stages[0].setup.train[client]))
    for stage in stages:
        mask = stage.setup.request.forget_masks.get(client)
        if mask is not None:
            positions = positions[~mask.cpu()]
    return positions


def _stage_info(stage: Stage) -> dict[str, Any]:
    return {
        "request": stage.index,
        ROUND: stage.round,
        KIND: stage.kind_name,
        "description": stage.setup.request.description,
        **stage.setup.info,
    }


def _agreed(values: list[Any]) -> Any:
    """The one value the requests that name one agree on, else None."""
    named = {v for v in values if v is not None}
    return named.pop() if len(named) == 1 else None


def _agreed_tensor(values: list[torch.Tensor | None]) -> torch.Tensor | None:
    named = [v for v in values if v is not None]
    if named and all(torch.equal(v, named[0]) for v in named):
        return named[0]
    return None
