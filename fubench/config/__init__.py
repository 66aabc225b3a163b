"""Strict YAML scenario files -> a typed :class:`ScenarioConfig`.

Every mistake raises :class:`fubench.ConfigError`, one line naming the file, the key
(dotted path) and what was expected. Unknown keys, duplicate keys, wrong types, missing
required keys and out-of-range values are all errors; nothing is ignored.

File layout (``version: 1``)::

    version: 1
    name: backdoor_mnist            # optional, defaults to the file name
    description: "..."              # optional
    dataset: {name: mnist, test_fraction: 0.3}
    model: {name: mnist_cnn}
    federation: {clients: 5, rounds: 6, local_epochs: 1, client_fraction: 1.0,
                 batch_size: 32, lr: 0.01, momentum: 0.9, weight_decay: 0.0,
                 partition: {name: iid}, record_history: auto,
                 history_dtype: float32}   # float16 halves the history on disk
    scenario: {kind: backdoor, client: 0, target_label: 9}
    methods: {retrain: {}, finetune: {rounds: 5}}     # or a list of names
    metrics: [test_acc, asr]        # optional; the kind's defaults otherwise
    seeds: [0, 1, 2]
    device: auto                    # auto | cpu | cuda | cuda:N
"""

from fubench.config.records import ComponentSpec, FederationConfig, MethodSpec, ScenarioConfig
from fubench.config.validate import load_scenario

__all__ = ["ComponentSpec", "FederationConfig", "MethodSpec", "ScenarioConfig", "load_scenario"]
