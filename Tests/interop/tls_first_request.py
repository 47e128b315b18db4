"""A TLS client that leaves Nagle's algorithm on (TCP_NODELAY unset, as a plain socket has it)
and sends its first request as soon as its handshake is done, COUNT times on new connections.
In TLS 1.3 the client's Finished is the handshake's last message, so that request waits in the
client's kernel until the Finished is acknowledged; a server that neither sends data nor
acknowledges at once holds it for the kernel's delayed acknowledgement (40 ms or more on Linux).

usage: tls_first_request.py PORT ALPN COUNT   (ALPN: http/1.1 or h2; the certificate not checked)
prints "version=TLSv1.3 fastest_ms=F slowest_ms=S": from the request's send to the answer's first
bytes (HTTP/1.1) or its HEADERS frame (h2), over the COUNT connections
"""
import sys
import time
from draining import connect
from h2_wire import PREFACE, frame, frames, literal

port, alpn, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
if alpn == "h2":
    block = literal(b":method", b"GET") + literal(b":scheme", b"https")
    block += literal(b":path", b"/x") + literal(b":authority", b"localhost")
    request = PREFACE + frame(0x4, 0, 0) + frame(0x1, 0x5, 1, block)  # SETTINGS, HEADERS
else:
    request = b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n"


def answered(sock):
    """Whether the answer began within 5 s."""
    if alpn != "h2":
        sock.settimeout(5)
        return bool(sock.recv(1))
    return any(kind == 0x1 for kind, _, _ in frames(sock, 5))


times, version = [], None
for _ in range(count):
    sock = connect(port, alpn)
    version = sock.version()
    start = time.monotonic()
    sock.sendall(request)
    if not answered(sock):
        sys.exit("no answer")
    times.append((time.monotonic() - start) * 1000)
    sock.close()
print("version=%s fastest_ms=%.1f slowest_ms=%.1f" % (version, min(times), max(times)), flush=True)
