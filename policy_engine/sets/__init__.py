"""Policy sets (POLICY_SPEC section 10), one job per module: the model, totality,
content types, deciding and loading. Import the public names from
:mod:`policy_engine.policy_set`."""
