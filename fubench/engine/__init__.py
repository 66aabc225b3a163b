"""The engine: one job per (scenario, seed) — its set-up, its reference models (trained
once and cached), its methods and its rows — and the tasks that run jobs anywhere.

* :mod:`~fubench.engine.plan` — everything that decides a scenario's jobs but the seed;
* :mod:`~fubench.engine.job` — one (scenario, seed);
* :mod:`~fubench.engine.outcome` — what a row produced, and the row it becomes;
* :mod:`~fubench.engine.cache` — trained models on disk;
* :mod:`~fubench.engine.tasks` — what a run hands its executors, and what comes back;
* :mod:`~fubench.engine.determinism`, :mod:`~fubench.engine.replicas`.

The runner, the conformance kit and the attention plots all run jobs through it, so
there is one way a row is produced. Import from the submodules."""
