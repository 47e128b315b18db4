"""Asks for a large answer and reads none of it for a while, as a client that stopped reading;
then reads until the server closes (or a bounded wait ends).

usage: stalled_reader.py PORT PATH STALL_SECONDS [tls]
(tls: over TLS, ALPN http/1.1, the certificate not checked)
prints "sent" once its request is written, then "received=N closed=1|0 seconds=S" (S: from
the end of the stall to the close)
"""
import sys
import time
from draining import connect, read_until_close

port, path, stall = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
tls = sys.argv[4:] == ["tls"]
sock = connect(port, "http/1.1" if tls else None, receive_buffer=4096)
sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
print("sent", flush=True)
time.sleep(stall)
start = time.monotonic()
received, closed = read_until_close(sock, 10)
print("received=%d closed=%d seconds=%.1f" % (received, closed, time.monotonic() - start))
