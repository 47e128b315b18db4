"""Sends REQUEST_HEX on one connection, then ends its side (shutdown SHUT_WR: a FIN, as a close
sends), and reads until the server closes.

usage: half_close.py PORT REQUEST_HEX
prints the seconds until the server closed, then everything it answered (latin-1); "timeout"
instead of the seconds if it did not close within 10 s
"""
import socket
import sys
import time

port, request = int(sys.argv[1]), bytes.fromhex(sys.argv[2])
sock = socket.create_connection(("127.0.0.1", port))
sock.settimeout(10)
sock.sendall(request)
sock.shutdown(socket.SHUT_WR)
started = time.time()
answer = b""
try:
    while True:
        data = sock.recv(65536)
        if not data:
            break
        answer += data
    print("%.3f" % (time.time() - started), flush=True)
except socket.timeout:
    print("timeout", flush=True)
print(answer.decode("latin-1"), flush=True)
