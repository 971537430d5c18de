"""A small TCP proxy the tests put between the service and PostgreSQL or Redis, to cut it.

`cut()` closes the listener and every open connection (the service sees its database or
Redis go away at once: open connections break, new ones are refused); `restore()` listens
again on the same port. `cut_on(...)` arms a cut that fires in the middle of a transaction,
when given statements pass through.
"""

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

CHUNK = 65_536
JOIN_TIMEOUT_S = 5


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target`, one pair of threads per connection."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections_seen = 0
        self.triggered = threading.Event()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._accepting = threading.Event()
        self._accept_thread: threading.Thread | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._threads: list[threading.Thread] = []
        self._patterns: tuple[bytes, ...] = ()
        self._forward_last = False
        self._armed = 0  # bumped by each cut_on(), so every connection starts matching afresh

    # -- control -------------------------------------------------------------------------

    def start(self) -> None:
        """Listen (on a free port the first time, on the same port after a cut)."""
        with self._lock:
            if self._listener is not None:
                return
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self.port))
            listener.listen(128)
            listener.settimeout(0.1)
            self.port = listener.getsockname()[1]
            self._listener = listener
            self._accepting.set()
            self._accept_thread = threading.Thread(
                target=self._accept_loop, args=(listener,), daemon=True
            )
            self._accept_thread.start()

    restore = start

    def cut(self) -> None:
        """Stop listening and break every open connection, as a dead host or network would."""
        with self._lock:
            listener, self._listener = self._listener, None
            self._accepting.clear()
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for sock in pair:
                _close(sock)
        accept_thread = self._accept_thread
        if accept_thread is not None and accept_thread is not threading.current_thread():
            accept_thread.join(JOIN_TIMEOUT_S)
        if listener is not None:
            listener.close()

    def cut_on(self, *patterns: bytes, forward: bool) -> None:
        """Arm a cut: when one connection's traffic to the target has carried `patterns` in
        this order, cut everything. With `forward`, the chunk holding the last pattern is
        passed on first (the target may act on it, its answer never comes back); without,
        it is dropped. `triggered` is set when the cut happens."""
        with self._lock:
            self.triggered.clear()
            self._patterns = patterns
            self._forward_last = forward
            self._armed += 1

    def close(self) -> None:
        self.cut()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(JOIN_TIMEOUT_S)

    # -- plumbing ------------------------------------------------------------------------

    def _accept_loop(self, listener: socket.socket) -> None:
        while self._accepting.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self._lock:
                if not self._accepting.is_set():
                    _close(client)
                    _close(upstream)
                    return
                self.connections_seen += 1
                pair = (client, upstream)
                self._pairs.add(pair)
            for source, sink, watch in ((client, upstream, True), (upstream, client, False)):
                thread = threading.Thread(
                    target=self._pump, args=(pair, source, sink, watch), daemon=True
                )
                self._threads.append(thread)
                thread.start()

    def _pump(
        self,
        pair: tuple[socket.socket, socket.socket],
        source: socket.socket,
        sink: socket.socket,
        watch: bool,
    ) -> None:
        progress = 0  # how many of the armed patterns this connection has carried
        armed = self._armed
        seen = b""
        try:
            while True:
                data = source.recv(CHUNK)
                if not data:
                    break
                if watch and self._patterns:
                    if armed != self._armed:
                        progress, armed, seen = 0, self._armed, b""
                    seen = seen[-4096:] + data
                    patterns = self._patterns
                    while progress < len(patterns) and patterns[progress] in seen:
                        seen = seen[seen.index(patterns[progress]) + len(patterns[progress]) :]
                        progress += 1
                    if progress == len(patterns):
                        self._fire(data, source, sink)
                        return
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._pairs.discard(pair)
            for sock in pair:
                _close(sock)

    def _fire(self, data: bytes, client: socket.socket, target: socket.socket) -> None:
        with self._lock:
            forward, self._patterns = self._forward_last, ()
        _close(client)  # first, so that no answer to `data` can get back
        if forward:
            target.sendall(data)
        self.cut()
        self.triggered.set()


def _close(sock: socket.socket) -> None:
    with suppress(OSError):  # already shut down, or never connected
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()


@contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    """A started proxy to `target`, closed on exit."""
    proxy = TcpProxy(target_host, target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
