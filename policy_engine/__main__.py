"""``python -m policy_engine``: the same as the ``policy-engine`` command."""

from policy_engine.cli import console_main

console_main()
