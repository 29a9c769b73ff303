"""``policy-engine bank``: build, list, check and import banks of hashes.

Each subcommand writes text for people, or one JSON document with
``--json``. Exit codes: 0 done, 2 bad input (a missing or undecodable
image, an unreadable or malformed bank or hash list, bad usage); nothing is
written to a bank when any input is bad.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from policy_engine.cli import exit_codes
from policy_engine.cli.common import CommandError
from policy_engine_hash_match.bank import FOLDER_BANK_FILE, Bank, bank_files, load_bank
from policy_engine_hash_match.errors import BankError, UndecodableImage
from policy_engine_hash_match.hash_lists import KINDS, ListedHash, read_hash_list
from policy_engine_hash_match.hashing import (
    DIHEDRAL_VARIANTS,
    ImageHashes,
    hash_image,
    pdq_hex,
)
from policy_engine_hash_match.index import distances_to
from policy_engine_hash_match.settings import (
    DEFAULT_MAX_DISTANCE,
    DEFAULT_QUALITY_FLOOR,
    MAX_DISTANCE_LIMIT,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Banks of known image hashes for the hash-match detector. BANK is a bank file "
        "(created if missing) or folder (written to its bank.txt)."
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="hash images into a bank (PDQ and SHA-256)")
    add.add_argument("bank", metavar="BANK")
    add.add_argument("images", metavar="IMAGE", nargs="+")
    add.add_argument(
        "--quality-floor",
        type=_between(0, 100),
        default=DEFAULT_QUALITY_FLOOR,
        help="add no PDQ hash of an image below this quality, only its SHA-256 "
        f"(default {DEFAULT_QUALITY_FLOOR})",
    )
    add.set_defaults(run=run_add)
    listing = actions.add_parser(
        "list", help="each bank's name, size and digest (given, or named by --policy)"
    )
    listing.add_argument("banks", metavar="BANK", nargs="*")
    listing.add_argument(
        "--policy", metavar="POLICY", help="also list the banks this policy's hash-match names"
    )
    listing.set_defaults(run=run_list)
    check = actions.add_parser("check", help="an image's nearest match in a bank, and its distance")
    check.add_argument("bank", metavar="BANK")
    check.add_argument("image", metavar="IMAGE")
    check.add_argument(
        "--max-distance",
        type=_between(0, MAX_DISTANCE_LIMIT),
        default=DEFAULT_MAX_DISTANCE,
        help=f"the PDQ distance that counts as a match (default {DEFAULT_MAX_DISTANCE})",
    )
    check.add_argument("--quality-floor", type=_between(0, 100), default=DEFAULT_QUALITY_FLOOR)
    check.set_defaults(run=run_check)
    imports = actions.add_parser(
        "import", help="add a hash list (text, one hash a line, or a hash-exchange CSV)"
    )
    imports.add_argument("bank", metavar="BANK")
    imports.add_argument(
        "file", metavar="FILE", help="a .csv file is read as CSV, any other as text"
    )
    imports.add_argument(
        "--kind",
        choices=KINDS,
        default=None,
        help="what a hash given without a type is (default pdq, with a note saying so)",
    )
    imports.set_defaults(run=run_import)
    for each in (add, listing, check, imports):
        each.add_argument("--json", action="store_true", help="write one JSON document")


def _between(low: int, high: int) -> Any:
    """An argparse type: a whole number from ``low`` to ``high``, as the
    detector's settings allow (a negative distance matched nothing, silently)."""

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is not from {low} to {high}")
        return value

    return whole_number


def _fail(exc: Exception | str) -> CommandError:
    return CommandError(f"policy-engine bank: {exc}", exit_codes.USAGE)


def _target(bank: str) -> Path:
    """The file ``add`` and ``import`` write: a folder's bank file, or the
    bank file itself, which must not be a CSV (they write the text form, whose
    lines a CSV bank cannot read: the bank would then fail to load)."""
    path = Path(bank)
    target = path / FOLDER_BANK_FILE if path.is_dir() else path
    if target.suffix.lower() == ".csv":
        raise _fail(
            f"{target}: `bank add` and `bank import` write a text bank (`pdq HEX` lines), not CSV: "
            "name a .txt file, or a folder (they write its bank.txt, beside its CSV files)"
        )
    return target


def _existing(bank: str) -> Bank | None:
    path = Path(bank)
    if not path.exists():
        return None
    try:
        return load_bank(path, allow_empty=True)
    except BankError as exc:
        raise _fail(exc) from exc


def _hash_file(image: str) -> ImageHashes:
    try:
        data = Path(image).read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read image {image}: {exc.strerror or exc}") from exc
    try:
        return hash_image(data, name=image)
    except UndecodableImage as exc:
        raise _fail(exc) from exc


def _append(target: Path, lines: Iterable[str]) -> None:
    """Add ``lines`` to the bank file ``target`` in one replace: a reader never
    sees half of them. The file keeps its permissions (a new one gets the
    umask's, not mkstemp's 0600, which another user's service cannot read),
    and a symlink is written through, not replaced by a copy."""
    new = list(lines)
    if not new:
        return
    target = target.resolve()
    try:
        exists = target.exists()
        old = target.read_text(encoding="utf-8") if exists else ""
        if old and not old.endswith("\n"):
            old += "\n"
        mode = target.stat().st_mode & 0o7777 if exists else 0o666 & ~_umask()
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(old + "".join(f"{line}\n" for line in new))
            os.chmod(temporary, mode)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise _fail(f"cannot write bank {target}: {exc.strerror or exc}") from exc


def _umask() -> int:
    """The process's umask (read by setting it: there is no other way)."""
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def _comment(text: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in text)


def _write(stdout: TextIO, document: Any, text: list[str], as_json: bool) -> int:
    if as_json:
        json.dump(document, stdout, indent=2)
        stdout.write("\n")
    else:
        stdout.write("".join(f"{line}\n" for line in text))
    return exit_codes.OK


def run_add(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    target = _target(args.bank)
    existing = _existing(args.bank)
    known_pdq = {bytes(row) for row in existing.index.hashes} if existing else set()
    known_sha = set(existing.sha256) if existing else set()
    hashed = [(image, _hash_file(image)) for image in args.images]  # every image, before writing
    lines: list[str] = []
    report: list[dict[str, Any]] = []
    for image, hashes in hashed:
        sha = bytes.fromhex(hashes.sha256)
        pdq = bytes(hashes.pdq[0])
        pdq_ok = hashes.quality >= args.quality_floor
        added = []
        if sha not in known_sha:
            known_sha.add(sha)
            lines.append(f"sha256 {hashes.sha256}  # {_comment(image)}")
            added.append("sha256")
        if pdq_ok and pdq not in known_pdq:
            known_pdq.add(pdq)
            lines.append(f"pdq {pdq.hex()}  # {_comment(image)} quality={hashes.quality}")
            added.append("pdq")
        report.append(
            {
                "image": image,
                "sha256": hashes.sha256,
                "pdq": pdq.hex(),
                "quality": hashes.quality,
                "added": added,
                "pdq_below_floor": not pdq_ok,
            }
        )
    _append(target, lines)
    text = [f"{target}: {len(lines)} hashes added"]
    for entry in report:
        note = ", ".join(entry["added"]) or "already in the bank"
        if entry["pdq_below_floor"]:
            note += f"; no PDQ: quality {entry['quality']} < {args.quality_floor}"
        text.append(f"  {entry['image']}: {note}")
    return _write(stdout, {"bank": str(target), "images": report}, text, args.json)


def _summary(bank: Bank) -> dict[str, Any]:
    return {**bank.metadata(), "files": [str(f) for f in bank_files(bank.path)]}


def _policy_banks(path: str, stderr: TextIO) -> list[Bank]:
    """The banks ``path``'s ``hash-match`` settings name, as the detector loads them."""
    from policy_engine.cli.common import installed_registry, load_policy_or_fail
    from policy_engine_hash_match.matching import BankCache
    from policy_engine_hash_match.settings import SOURCE, HashMatchSettings

    policy = load_policy_or_fail(path, installed_registry(), stderr)
    if SOURCE not in policy.detectors:
        raise _fail(f"{path}: the policy does not run {SOURCE}")
    settings = HashMatchSettings.from_mapping(
        policy.detectors[SOURCE], base_dir=policy.directory_of(SOURCE)
    )
    return [bank for _, bank in BankCache().load_all(settings.banks).values()]


def run_list(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    if not args.banks and args.policy is None:
        raise _fail("name a BANK or give --policy")
    try:
        banks = [load_bank(Path(path), allow_empty=True) for path in args.banks]
        if args.policy is not None:
            banks += _policy_banks(args.policy, stderr)
    except BankError as exc:
        raise _fail(exc) from exc
    listing = [_summary(bank) for bank in banks]
    text = [
        f"{b['name']}: {b['pdq']} PDQ, {b['sha256']} SHA-256, "
        f"digest {b['digest'][:12]} ({b['path']})"
        for b in listing
    ]
    return _write(stdout, listing, text, args.json)


def run_check(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    try:
        bank = load_bank(Path(args.bank), allow_empty=True)
    except BankError as exc:
        raise _fail(exc) from exc
    hashes = _hash_file(args.image)
    exact = bytes.fromhex(hashes.sha256) in bank.sha256
    nearest: dict[str, Any] | None = None
    if bank.pdq_count:
        # every variant against every hash: the nearest at any distance, not only a match
        distances = np.stack([distances_to(bank.index.hashes, q) for q in hashes.pdq])
        variant, position = np.unravel_index(int(np.argmin(distances)), distances.shape)
        nearest = {
            "distance": int(distances[variant, position]),
            "hash": pdq_hex(bank.index.hashes[position]),
            "variant": DIHEDRAL_VARIANTS[int(variant)],
        }
    quality_ok = hashes.quality >= args.quality_floor
    pdq_match = nearest is not None and quality_ok and nearest["distance"] <= args.max_distance
    document = {
        "bank": bank.name,
        "image": args.image,
        "sha256": hashes.sha256,
        "pdq": pdq_hex(hashes.pdq[0]),
        "quality": hashes.quality,
        "exact": exact,
        "nearest": nearest,
        "max_distance": args.max_distance,
        "matched": exact or pdq_match,
    }
    verdict = "matches" if document["matched"] else "does not match"
    text = [f"{args.image} {verdict} bank {bank.name}"]
    if exact:
        text.append("  exact copy (SHA-256)")
    if nearest is not None:
        text.append(
            f"  nearest PDQ {nearest['hash']} at distance {nearest['distance']} "
            f"({nearest['variant']}; a match is at most {args.max_distance})"
        )
    if not quality_ok:
        text.append(f"  PDQ quality {hashes.quality} < {args.quality_floor}: not PDQ-matched")
    return _write(stdout, document, text, args.json)


def run_import(args: argparse.Namespace, stdout: TextIO, stderr: TextIO) -> int:
    target = _target(args.bank)
    existing = _existing(args.bank)
    try:
        listed = read_hash_list(Path(args.file), default_kind=args.kind or "pdq")
    except BankError as exc:
        raise _fail(exc) from exc
    known = {
        "pdq": {bytes(row) for row in existing.index.hashes} if existing else set(),
        "sha256": set(existing.sha256) if existing else set(),
    }
    lines: list[str] = []
    fresh: list[ListedHash] = []
    for entry in listed.hashes:
        if entry.digest not in known[entry.kind]:
            known[entry.kind].add(entry.digest)
            fresh.append(entry)
            lines.append(f"{entry.kind} {entry.digest.hex()}  # {_comment(args.file)}:{entry.line}")
    for other in listed.others:
        print(f"policy-engine bank: skipped {other}", file=stderr)
    untyped = sum(1 for entry in listed.hashes if not entry.typed)
    if untyped and args.kind is None:
        # a SHA-256 and a PDQ hash are both 64 hex digits: only the user knows which
        print(
            f"policy-engine bank: {untyped} hash(es) without a type read as pdq; if they "
            "are SHA-256 hashes of files, import them with --kind sha256 instead",
            file=stderr,
        )
    _append(target, lines)
    document = {
        "bank": str(target),
        "read": len(listed.hashes),
        "added": len(fresh),
        "duplicates": len(listed.hashes) - len(fresh),
        "skipped": [str(other) for other in listed.others],
        "untyped": untyped,
    }
    text = [
        f"{target}: {len(fresh)} hashes added of {len(listed.hashes)} read "
        f"({document['duplicates']} already there, "
        f"{len(listed.others)} of other signal types skipped)"
    ]
    return _write(stdout, document, text, args.json)
