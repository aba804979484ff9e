"""A small misbehaving HTTPS server for end-to-end tests (not shipped): on 127.0.0.1, with the emulator's server
certificate (so the collection's TLS checks pass), answering each request as the test says: malformed, oversized,
drip-fed or redirecting answers. It records every connection, request and client certificate it gets."""
import re
import socket
import ssl
import sys
import threading
import time

# Runs a command and prints the largest resident set size of any process under it (ansible, its worker, the module).
PEAK_RSS_WRAPPER = (sys.executable, "-c", (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[1:])\n"
    "sys.stderr.write('peak_rss_kib=%d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(code)\n"))


def peak_rss_mib(output):
    """The peak printed by PEAK_RSS_WRAPPER, in MiB."""
    return int(re.search(r"peak_rss_kib=(\d+)", output).group(1)) / 1024.0


class Request:
    def __init__(self, method, target, headers):
        self.method = method
        self.target = target
        self.headers = headers


def read_request(conn):
    """The Request whose head arrives on ``conn`` (a socket), or None when the client hangs up first."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        data = conn.recv(4096)
        if not data:
            return None
        head += data
    lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    method, target = lines[0].split(" ")[:2]
    fields = (line.split(":", 1) for line in lines[1:] if ":" in line)
    return Request(method, target, {name: value.strip() for name, value in fields})


def answer(status, body=b"", headers=None, length=True):
    """The bytes of a whole HTTP/1.1 answer that closes the connection; without ``length`` its end is the close."""
    head = ["HTTP/1.1 %s" % status, "Content-Type: application/xml; charset=utf-8", "Connection: close"]
    if length:
        head.append("Content-Length: %d" % len(body))
    head.extend("%s: %s" % item for item in (headers or {}).items())
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def streamed(head, chunk, count, pause=0.0):
    """An answer written as it goes: ``head`` (bytes), then ``chunk`` ``count`` times, ``pause`` seconds apart."""
    def write(conn):
        conn.sendall(head)
        for _sent in range(count):
            if pause:
                time.sleep(pause)
            conn.sendall(chunk)
    return write


class HostileServer:
    """``respond(request)`` returns the answer: bytes to send, or a function that writes to the TLS socket."""

    def __init__(self, emulator, respond=None):
        manifest = emulator.server.manifest
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(manifest["server_cert_path"], manifest["server_key_path"])
        self.context.verify_mode = ssl.CERT_OPTIONAL  # records a client certificate when one is presented
        for path in manifest["trusted_client_certificates"]:
            self.context.load_verify_locations(cafile=path)
        self.respond = respond or (lambda request: answer("404 Not Found"))
        self.connections = 0
        self.requests = []
        self.client_certificates = []
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self.url = "https://127.0.0.1:%d" % self.port
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self._listener.close()

    def _accept(self):
        while True:
            try:
                raw, _address = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        raw.settimeout(60)
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                self.client_certificates.append(conn.getpeercert(binary_form=True))
                request = read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                reply = self.respond(request)
                if callable(reply):
                    reply(conn)
                else:
                    conn.sendall(reply)
        except (OSError, ssl.SSLError):  # the client hung up: what the tests provoke
            pass
