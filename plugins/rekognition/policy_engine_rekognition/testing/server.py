"""The HTTP server: reads a POST, asks a function for the answer, writes it.

It knows nothing of Rekognition beyond the body limit: what to answer is the
scripting layer's job (:meth:`FakeRekognition._handle`).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from policy_engine_rekognition.testing.validation import Reply, error_reply

LOOPBACK: Final = "127.0.0.1"

Answer = Callable[[Mapping[str, str], bytes], tuple[Reply, str] | None]
"""Given the headers (lower-case names) and the body: the reply and its request
id, or None to close the connection without an answer (the fake is stopping)."""

# A request body can hold a 5 MiB image as base64 and some JSON; refuse far more.
_MAX_BODY_BYTES: Final = 16 * 1024 * 1024


class FakeServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that tracks its connections and request threads, so
    that stopping ends idle keep-alive connections and joins every thread
    (the standard class joins only non-daemon threads, and non-daemon threads
    would hold up interpreter exit if a test forgot to stop the fake).

    Listens from construction on; :meth:`start` serves from a background thread.
    A host with a colon is IPv6.
    """

    daemon_threads = True
    # socketserver's default backlog of 5 overflows when a client opens a
    # pool of connections at once; the kernel then drops the extra SYNs and
    # those connections start a whole second late (the SYN retransmit).
    request_queue_size = socket.SOMAXCONN

    def __init__(
        self,
        answer: Answer,
        stopping: threading.Event,
        host: str = LOOPBACK,
        port: int = 0,
    ) -> None:
        self.answer = answer
        self.stopping = stopping
        self._connections: set[socket.socket] = set()
        self._request_threads: list[threading.Thread] = []
        self._tracking_lock = threading.Lock()
        self._serving: threading.Thread | None = None
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), _Handler)

    @property
    def endpoint_url(self) -> str:
        """``http://HOST:PORT`` of the socket as bound (the port chosen for port 0)."""
        host, port = self.server_address[:2]
        host = str(host)
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> FakeServer:
        """Serve from a background thread."""
        thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeRekognition:{self.server_address[1]}",
            daemon=True,
        )
        thread.start()
        self._serving = thread
        return self

    def stop(self) -> None:
        """Stop serving, close the port and every connection, and join every
        thread. Set ``stopping`` first, so that an answer being prepared gives up."""
        self.shutdown()
        if self._serving is not None:
            self._serving.join()
        self.close_connections()
        self.server_close()  # joins the request threads

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=f"FakeRekognition request from port {client_address[1]}",
            daemon=True,
        )
        with self._tracking_lock:
            self._connections.add(request)
            self._request_threads = [t for t in self._request_threads if t.is_alive()]
            self._request_threads.append(thread)
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._tracking_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if self.stopping.is_set():
            return  # a connection cut by stop(): expected
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._tracking_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                connection.shutdown(socket.SHUT_RDWR)

    def server_close(self) -> None:
        super().server_close()
        with self._tracking_lock:
            threads, self._request_threads = self._request_threads, []
        for thread in threads:
            thread.join()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS; Content-Length always sent
    # Headers and body go out in two writes: without TCP_NODELAY the second
    # waits for the client's delayed ACK, adding about 40 ms to every answer.
    disable_nagle_algorithm = True
    server: FakeServer

    def version_string(self) -> str:
        return "FakeRekognition"

    def do_POST(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= _MAX_BODY_BYTES:
            self.close_connection = True
            reply = error_reply("SerializationException", "Bad or too large Content-Length", 413)
            self._send(reply, str(uuid.uuid4()))
            return
        raw_body = self.rfile.read(length)
        headers = {key.lower(): value for key, value in self.headers.items()}
        answer = self.server.answer(headers, raw_body)
        if answer is None:
            self.close_connection = True
            return
        self._send(*answer)

    def _send(self, reply: Reply, request_id: str) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        self.send_header("x-amzn-RequestId", request_id)
        self.end_headers()
        self.wfile.write(reply.body)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read :attr:`FakeRekognition.calls` instead of a log."""
