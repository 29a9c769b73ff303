"""``python -m policy_engine_rekognition.testing``: the fake Rekognition as a server.

Prints its endpoint (``http://127.0.0.1:PORT``), one line on stdout, once it
accepts connections, and serves until SIGINT or SIGTERM (exit 0). Exit 2: the
arguments or the script file are wrong (every reason on stderr); exit 1: it
could not listen.
"""

from __future__ import annotations

import argparse
import ipaddress
import math
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import TextIO

from policy_engine_rekognition.testing.script_file import ScriptError, read_script
from policy_engine_rekognition.testing.scripting import FakeRekognition
from policy_engine_rekognition.testing.server import LOOPBACK

PROG = "python -m policy_engine_rekognition.testing"


def _seconds(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(text)
    return value


def _rate(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(text)
    return value


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise ValueError(text)
    return value


def _status(text: str) -> int:
    value = int(text)
    if not 400 <= value <= 599:
        raise ValueError(text)
    return value


# argparse names the type in its message: "invalid seconds value: 'x'".
_seconds.__name__ = "seconds (a number >= 0)"
_rate.__name__ = "calls per second (a number > 0)"
_port.__name__ = "port (0 to 65535)"
_status.__name__ = "HTTP status (400 to 599)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Run the fake Amazon Rekognition (DetectModerationLabels, DetectCustomLabels) "
            "as an HTTP server. Prints its endpoint on stdout, then serves until "
            "SIGINT or SIGTERM. Point any SDK at it with endpoint_url or "
            "AWS_ENDPOINT_URL_REKOGNITION; any credentials are accepted."
        ),
    )
    parser.add_argument(
        "--host",
        default=LOOPBACK,
        help="address to listen on (default: %(default)s; the fake accepts any credentials, "
        "so think twice before listening beyond this machine)",
    )
    parser.add_argument(
        "--port", type=_port, default=0, help="port (default: 0, one the system chooses)"
    )
    parser.add_argument(
        "--latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="delay every answer by this many seconds",
    )
    parser.add_argument(
        "--tps",
        type=_rate,
        default=None,
        metavar="N",
        help="throttle calls over N in any sliding second (ThrottlingException)",
    )
    parser.add_argument(
        "--throttle-status",
        type=_status,
        default=400,
        metavar="STATUS",
        help="HTTP status of ThrottlingException answers (default: %(default)s)",
    )
    parser.add_argument(
        "--script",
        metavar="FILE",
        help="JSON file of scripted answers: set_default, respond, fail, throttle "
        "(see the plugin's README)",
    )
    return parser


def main(
    argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None
) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = build_parser().parse_args(argv)  # exit 2 on a usage error
    fake = FakeRekognition(
        latency=args.latency,
        tps=args.tps,
        throttle_status=args.throttle_status,
        host=args.host,
        port=args.port,
    )
    if args.script is not None:
        try:
            read_script(args.script).apply(fake)
        except ScriptError as exc:
            for error in exc.errors:
                print(f"{PROG}: {error}", file=err)
            return 2
    if not _is_loopback(args.host):
        print(
            f"{PROG}: warning: listening on {args.host}, beyond this machine; "
            "the fake accepts any credentials",
            file=err,
        )

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    # Before listening: a signal that comes as soon as the endpoint is printed still stops cleanly.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    try:
        fake.start()
    except OSError as exc:
        print(
            f"{PROG}: cannot listen on {args.host} port {args.port}: {exc.strerror or exc}",
            file=err,
        )
        return 1
    try:
        print(fake.endpoint_url, file=out, flush=True)
        while not stop.wait(1.0):  # a timeout keeps the main thread responsive to signals
            pass
    except BrokenPipeError:
        pass  # whoever started us stopped reading: serving on would be pointless
    finally:
        fake.stop()
    return 0


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
