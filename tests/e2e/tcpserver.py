"""The accept loop of the tests' raw TCP servers on 127.0.0.1 (endpoints that misbehave below
HTTP, a CONNECT proxy): one place for what they share."""

import socket
import threading


class TcpServer:
    """Listens on a free port of 127.0.0.1 and runs `handle(conn)` for each connection in a
    daemon thread of its own (so a stalled connection holds up no other), until `close()`.
    `accepted` counts the connections."""

    def __init__(self, handle):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._handle = handle
        threading.Thread(target=self._accept_loop, daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:  # closed
                return
            self.accepted += 1
            threading.Thread(target=self._handle, args=(c,), daemon=True).start()

    def close(self):
        # Closing alone does not wake a thread blocked in accept() on Linux, and the kernel
        # keeps accepting for it; shutting the socket down first ends the loop.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
