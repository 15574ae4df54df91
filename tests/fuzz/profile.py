"""How hard to fuzz: the `bounded` profile of `make test` and the `deep` one of `make fuzz`.

- `bounded` (the default): a few examples per operation, a fixed seed and Hypothesis's
  derandomized mode, no example database: the same cases on every run, within about a
  minute on SQLite and PostgreSQL together.
- `deep` (`FUZZ_PROFILE=deep`): many examples per operation, a new seed each run (printed;
  `FUZZ_SEED` replays one), Schemathesis's coverage phase (boundary and invalid values of
  every parameter), longer stateful runs, and the app's own background jobs (SLO engine,
  alert correlation, analysis) running beside the requests, as in `serve`.

`FUZZ_MAX_EXAMPLES` (per operation) and `FUZZ_BACKENDS` (`sqlite,postgresql`) override;
`FUZZ_EXTRA_CHECKS` adds Schemathesis checks by name (e.g. `positive_data_acceptance`);
`FUZZ_DEPENDENCIES=silent` makes Prometheus, Loki and Tempo accept connections and never
answer, instead of refusing them (`down`, the default).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, replace

import pytest


@dataclass(frozen=True)
class Budget:
    """What one backend gets."""

    max_examples: int  # per operation, in the fuzzing phase
    stateful_scenarios: int  # 0: no stateful run


@dataclass(frozen=True)
class FuzzProfile:
    """One way of running the fuzzer."""

    name: str
    seed: int
    deterministic: bool
    coverage_phase: bool
    stateful_steps: int
    background_jobs: bool
    budgets: dict[str, Budget]
    extra_checks: tuple[str, ...] = ()
    silent_dependencies: bool = False

    @property
    def backends(self) -> tuple[str, ...]:
        """The backends fuzzed, in order."""
        return tuple(self.budgets)


def profile_from_environment() -> FuzzProfile:
    """The profile `FUZZ_PROFILE` names, with the environment's overrides."""
    name = os.environ.get("FUZZ_PROFILE", "bounded")
    seed_text = os.environ.get("FUZZ_SEED")
    if name == "bounded":
        profile = FuzzProfile(
            name=name,
            seed=int(seed_text or 20_260_917),
            deterministic=True,
            coverage_phase=False,
            stateful_steps=6,
            background_jobs=False,
            # PostgreSQL gets fewer: its own failure modes (NUL bytes, strict types, sizes)
            # show in a few requests per operation, and `make test` has a time budget.
            budgets={"sqlite": Budget(6, 10), "postgresql": Budget(3, 0)},
        )
    elif name == "deep":
        profile = FuzzProfile(
            name=name,
            seed=int(seed_text or random.SystemRandom().randrange(2**32)),
            deterministic=False,
            coverage_phase=True,
            stateful_steps=12,
            background_jobs=True,
            budgets={"sqlite": Budget(200, 200), "postgresql": Budget(50, 50)},
        )
    else:
        raise pytest.UsageError(f"FUZZ_PROFILE must be 'bounded' or 'deep', not {name!r}")
    if backends := os.environ.get("FUZZ_BACKENDS"):
        chosen = [backend.strip() for backend in backends.split(",") if backend.strip()]
        unknown = set(chosen) - set(profile.budgets)
        if unknown:
            raise pytest.UsageError(f"FUZZ_BACKENDS names unknown backends: {sorted(unknown)}")
        profile = replace(profile, budgets={b: profile.budgets[b] for b in chosen})
    if examples := os.environ.get("FUZZ_MAX_EXAMPLES"):
        profile = replace(
            profile,
            budgets={
                backend: replace(budget, max_examples=int(examples))
                for backend, budget in profile.budgets.items()
            },
        )
    if checks := os.environ.get("FUZZ_EXTRA_CHECKS"):
        names = tuple(name.strip() for name in checks.split(",") if name.strip())
        profile = replace(profile, extra_checks=names)
    dependencies = os.environ.get("FUZZ_DEPENDENCIES", "down")
    if dependencies not in ("down", "silent"):
        raise pytest.UsageError(
            f"FUZZ_DEPENDENCIES must be 'down' or 'silent', not {dependencies!r}"
        )
    return replace(profile, silent_dependencies=dependencies == "silent")


PROFILE = profile_from_environment()
