"""Asks for a large answer and reads none of it for a while, as a client that stopped reading;
then reads until the server closes (or a bounded wait ends).

usage: stalled_reader.py PORT PATH STALL_SECONDS
prints "received=N closed=1|0 seconds=S" (S: from the end of the stall to the close)
"""
import socket
import sys
import time
from draining import read_until_close

port, path, stall = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
sock = socket.socket()
sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
sock.connect(("127.0.0.1", port))
sock.sendall(("GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n" % path).encode())
time.sleep(stall)
start = time.monotonic()
received, closed = read_until_close(sock, 10)
print("received=%d closed=%d seconds=%.1f" % (received, closed, time.monotonic() - start))
