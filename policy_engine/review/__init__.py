"""Reviewing a policy without images: what it decides, exactly, and whether it
keeps its promises.

- :mod:`~policy_engine.review.table`: the exact decision table (every label
  the detectors' taxonomies and ``labels:`` know, band by band), and the one
  choice of taxonomies and labels every review walks;
- :mod:`~policy_engine.review.diff`: what changes between two policies, and
  over a corpus of recordings;
- :mod:`~policy_engine.review.strictness`: whether one policy is at least as
  strict as another (POLICY_SPEC section 11), band by band, with counterexamples;
- :mod:`~policy_engine.review.invariants`: promises checked exactly over the table
  (strictness promises too);
- :mod:`~policy_engine.review.explain`: how each label of a decision was decided;
- :mod:`~policy_engine.review.tests_file` and :mod:`~policy_engine.review.runner`:
  tests files (cases and invariants) loaded, then run, with coverage;
  :mod:`~policy_engine.review.junit` reports a run for CI;
- :mod:`~policy_engine.review.migrate`: rewriting a policy's names for a new taxonomy.

Pure functions of compiled policies and data, as OPA's ``tester`` sits beside
its evaluator: only the loaders read files.
"""
