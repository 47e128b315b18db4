"""Connects, sends some bytes (or none) and then nothing, and reports how the server ended it.

usage: silent_client.py PORT [HEX-BYTES]
prints "closed SECONDS" (the server closed the connection), "answered SECONDS" (it sent
something) or "open SECONDS" (still open after 5 seconds)
"""
import socket
import sys
import time

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(bytes.fromhex(sys.argv[2] if len(sys.argv) > 2 else ""))
s.settimeout(5)
start = time.time()
try:
    outcome = "closed" if s.recv(100) == b"" else "answered"
except socket.timeout:
    outcome = "open"
except OSError:
    outcome = "closed"
print(outcome, round(time.time() - start, 1))
