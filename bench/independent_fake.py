"""A minimal stand-in for Rekognition that shares no code with the project.

    python bench/independent_fake.py [--latency 0.1]

Prints ``http://127.0.0.1:PORT`` on its first line, then answers every POST
(DetectModerationLabels) with one fixed label after ``--latency`` seconds,
until stdin closes. Standard library only: ``bench_batch.py`` measures
``check`` against it as well as against the project's own fake, so a gap
cannot hide in a fake built alongside the client.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ANSWER = json.dumps(
    {
        "ModerationLabels": [
            {"Confidence": 70.0, "Name": "Graphic Violence", "ParentName": "Violence"},
            {"Confidence": 70.0, "Name": "Violence", "ParentName": ""},
        ],
        "ModerationModelVersion": "7.0",
    }
).encode()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = socket.SOMAXCONN  # a pool opens its connections at once


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    latency = 0.1

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        time.sleep(self.latency)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(ANSWER)))
        self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
        self.end_headers()
        self.wfile.write(ANSWER)

    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.1)
    args = parser.parse_args()
    Handler.latency = args.latency
    server = Server(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    sys.stdin.read()  # until the benchmark closes our stdin
    server.shutdown()


if __name__ == "__main__":
    main()
