"""A TCP proxy between the system's processes and the broker that can make the network
bad on command: add delay, stall (nothing passes, as with every packet dropped, then
everything resumes as TCP would retransmit), refuse new connections and reset open ones.

Plain threads (no eventlet): it runs inside the suite's own process. Needs no privileges.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading
import time

log = logging.getLogger(__name__)


class FaultProxy:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1"):
        self.upstream = (upstream_host, upstream_port)
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(256)
        self.port = self.listener.getsockname()[1]
        self.delay = 0.0
        self.stalled = threading.Event()
        self.refusing = threading.Event()
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self.accepted = 0
        self.resets = 0
        self._thread = threading.Thread(target=self._accept_loop, name="proxy", daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    # -- faults -------------------------------------------------------------------------

    def set_delay(self, seconds: float) -> None:
        self.delay = seconds

    def stall(self, on: bool) -> None:
        (self.stalled.set if on else self.stalled.clear)()

    def refuse(self, on: bool) -> None:
        (self.refusing.set if on else self.refusing.clear)()

    def reset_all(self) -> int:
        """Cut every open connection with a TCP reset (SO_LINGER 0)."""
        with self._lock:
            pairs = list(self._pairs)
            self._pairs.clear()
        for pair in pairs:
            for sock in pair:
                _reset(sock)
        self.resets += len(pairs)
        return len(pairs)

    def clear(self) -> None:
        self.set_delay(0.0)
        self.stall(False)
        self.refuse(False)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def close(self) -> None:
        self.closing.set()
        try:
            self.listener.close()
        except OSError:
            pass
        self.reset_all()

    # -- plumbing -----------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self.closing.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing.is_set():
                _refuse(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
                server.settimeout(None)
            except OSError:
                _refuse(client)  # the broker is down: as if it refused the connection
                continue
            for sock in (client, server):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = (client, server)
            with self._lock:
                self._pairs.add(pair)
            self.accepted += 1
            for src, dst in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair) -> None:
        try:
            while True:
                while self.stalled.is_set() and not self.closing.is_set():
                    time.sleep(0.02)
                data = src.recv(65536)
                if not data:
                    break
                if self.delay:
                    time.sleep(self.delay)
                while self.stalled.is_set() and not self.closing.is_set():
                    time.sleep(0.02)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                present = pair in self._pairs
                self._pairs.discard(pair)
            for sock in pair:
                if present:  # an orderly end: pass it on
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                sock.close()


def _reset(sock: socket.socket) -> None:
    """Linger 0, then wake the thread blocked reading it: its close sends a TCP reset.
    (Closing a socket another thread is blocked on would neither wake it nor reset.)"""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RD)
    except OSError:
        try:
            sock.close()
        except OSError:
            pass


def _refuse(sock: socket.socket) -> None:
    """A connection no thread reads yet: closed with a TCP reset at once."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()
