"""Opens several connections and sends on each the same request, repeated back to back
(pipelined), as fast as the server takes them, for a bounded number of bytes and seconds; reads
no answer. Then holds the connections open for a moment, so the server's memory can be looked at.

usage: pipelining_clients.py PORT CONNECTIONS KIBIBYTES_EACH SECONDS REQUEST_HEX
prints "sent=N" (bytes, all connections) once the sending is over, then holds for 5 s
"""
import socket
import sys
import time

port, connections, kibibytes, seconds = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
request = bytes.fromhex(sys.argv[5])
data = request * (kibibytes * 1024 // len(request))
socks = []
for _ in range(connections):
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setblocking(False)
    socks.append(sock)
sent = [0] * connections
deadline = time.monotonic() + seconds
while time.monotonic() < deadline and any(count < len(data) for count in sent):
    for index, sock in enumerate(socks):
        if sent[index] < len(data):
            try:
                sent[index] += sock.send(data[sent[index]:sent[index] + 65536])
            except BlockingIOError:
                pass
    time.sleep(0.01)
print("sent=%d" % sum(sent), flush=True)
time.sleep(5)
