"""Strict YAML scenario files -> a typed scenario configuration.

* :mod:`fubench.config.yaml12` reads a file as YAML 1.2, strictly (duplicate keys, size
  limits);
* :mod:`fubench.config.validate` checks it against the registered components'
  declarations (``load_scenario``) and applies command-line overrides
  (``apply_overrides``); every mistake is one :class:`fubench.ConfigError` line naming
  the file, the key and what was expected;
* :mod:`fubench.config.spec` holds the records it becomes (``ScenarioConfig``,
  ``MethodSpec``...); :mod:`fubench.config.claims` the claims a file states.

Nothing is imported here, so a module that needs a record does not load the validator.
"""
