"""Entry point of the ``hash-match`` plugin (``[project.entry-points.policy_engine]``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from policy_engine import Detector, hookimpl
from policy_engine_hash_match.detector import HashMatchDetector

if TYPE_CHECKING:  # annotations only: a start that runs no command never imports argparse
    import argparse


@hookimpl
def policy_engine_register_detectors(register: Callable[[Detector], None]) -> None:
    register(HashMatchDetector())


@hookimpl
def policy_engine_register_commands(
    register: Callable[[str, str, Callable[[argparse.ArgumentParser], None]], None],
) -> None:
    register("bank", BANK_SUMMARY, _configure_bank)


BANK_SUMMARY = "build, list, check and import banks of known image hashes (hash-match)"


def _configure_bank(parser: argparse.ArgumentParser) -> None:
    # imported only when `bank` runs: `--help` lists it without numpy or the CLI's helpers
    from policy_engine_hash_match.cli import configure

    configure(parser)
