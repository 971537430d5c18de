"""A local stand-in for Have I Been Pwned's range API (`GET /range/{5 hex}`), on a free port:
what it was asked is kept, so a test can check that only the prefix left the service."""

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def sha1_hex(password: str) -> str:
    return hashlib.sha1(password.encode(), usedforsecurity=False).hexdigest().upper()


@dataclass
class RangeApi:
    """Passwords it knows as breached, and what it was asked (path and Add-Padding)."""

    url: str = ""
    breached: set[str] = field(default_factory=set)
    delay_s: float = 0.0
    status: int = 200
    asked: list[tuple[str, str | None]] = field(default_factory=list)

    def answer(self, prefix: str) -> str:
        lines = [
            f"{digest[5:]}:{1000 + n}"
            for n, digest in enumerate(sorted(sha1_hex(p) for p in self.breached))
            if digest.startswith(prefix)
        ]
        padding = [f"{n:035X}:0" for n in range(3)]  # Add-Padding's decoys, count 0
        return "\r\n".join(lines + padding)


@contextmanager
def range_api() -> Iterator[RangeApi]:
    api = RangeApi()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            api.asked.append((self.path, self.headers.get("Add-Padding")))
            time.sleep(api.delay_s)
            body = api.answer(self.path.rsplit("/", 1)[-1]).encode()
            self.send_response(api.status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    api.url = f"http://127.0.0.1:{server.server_address[1]}/range/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
