"""A real HTTP server that receives webhooks for the tests and the demo.

Listens on 127.0.0.1 only. Every POST is recorded (method, path, headers in wire order, body,
receipt time). What it answers is scripted per path: a list of responses used in turn (the last
one repeats), each a status, extra headers, a body and an optional delay before answering.
"""

import http.server
import socketserver
import ssl
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    method: str
    path: str
    headers: list  # [(name, value)] in wire order
    body: bytes
    at: float
    echo: bytes = b""  # what an echoing reply sent back
    answered: float = 0.0  # when the reply went out (0 while it has not)
    # when writing the reply began: the client cannot have its answer before this, so intervals
    # [at, replying] of one client's requests never overlap unless it really sent them at once
    # (`answered`, stamped after the write, may come after the client's next request arrived)
    replying: float = 0.0
    peer: tuple = ()  # the sender's (address, port): which process sent it can be looked up

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None


@dataclass
class Reply:
    status: int = 200
    headers: dict = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0
    # answer with the request itself (its line, headers and body), as some endpoints do
    echo: bool = False


class Sink:
    def __init__(self, tls_context: ssl.SSLContext | None = None):
        self.received: list[Received] = []
        self.scripts: dict[str, list[Reply]] = {}
        self.answers: dict = {}
        # Called with each request as it is recorded, before it is answered (fault tests crash
        # the server from here: the worker has just sent this request).
        self.on_receive = None
        self.lock = threading.Condition()
        sink = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every response.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:
                    # The sender went away mid-request (e.g. killed): nothing was delivered.
                    self.close_connection = True
                    return
                rec = Received("POST", self.path, list(self.headers.items()), body, time.time(),
                               peer=self.client_address)
                reply = sink._next_reply(self.path, rec)
                if reply.echo:
                    rec.echo = (self.requestline + "\r\n" + str(self.headers)).encode() + body
                with sink.lock:
                    sink.received.append(rec)
                    sink.lock.notify_all()
                    hook = sink.on_receive
                if hook:
                    hook(rec)
                if reply.delay:
                    time.sleep(reply.delay)
                rec.replying = time.time()
                try:
                    self.send_response(reply.status)
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    out = rec.echo if reply.echo else reply.body
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                    self.wfile.flush()
                    rec.answered = time.time()
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                self.send_response(405)
                self.send_header("Content-Length", "0")
                self.end_headers()

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True
            request_queue_size = 256

            def handle_error(self, request, client_address):
                # a sender killed mid-request (the fault tests do that) is not the sink's error
                import sys
                if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
                    super().handle_error(request, client_address)

        self.server = Server(("127.0.0.1", 0), Handler)
        if tls_context is not None:
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        scheme = "https" if tls_context else "http"
        host = "localhost" if tls_context else "127.0.0.1"
        self.base = f"{scheme}://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _next_reply(self, path, rec):
        with self.lock:
            answer = self.answers.get(path.split("?")[0])
            if answer:
                return answer(rec)
            script = self.scripts.get(path.split("?")[0])
            if not script:
                return Reply()
            return script.pop(0) if len(script) > 1 else script[0]

    def answer(self, path, reply_for):
        """Answers each request to `path` with reply_for(the Received request), called under
        the sink's lock."""
        with self.lock:
            self.answers[path] = reply_for

    def script(self, path, *replies):
        with self.lock:
            self.scripts[path] = list(replies)

    def url(self, path):
        return self.base + path

    def on(self, path):
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, path, n, timeout=20.0):
        """Waits until `n` requests reached `path`; returns them."""
        deadline = time.time() + timeout
        with self.lock:
            while True:
                got = [r for r in self.received if r.path == path]
                if len(got) >= n or time.time() > deadline:
                    return got
                self.lock.wait(timeout=max(0.0, min(0.2, deadline - time.time())))

    def close(self):
        self.server.shutdown()
        self.server.server_close()
