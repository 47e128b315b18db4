"""Sends COUNT requests at the same moment, spread round-robin over the given ports, each on its
own connection (opened before the moment, so only the requests themselves race), and reports
when each answer came.

usage: simultaneous_requests.py COUNT PATH PORT [PORT ...]
prints one JSON line: [[status, seconds from the moment to the whole answer], ...] in send order
(status 0 when the connection failed).
"""
import http.client
import json
import sys
import threading
import time

count, path, ports = int(sys.argv[1]), sys.argv[2], [int(p) for p in sys.argv[3:]]
connections = [http.client.HTTPConnection("127.0.0.1", ports[i % len(ports)], timeout=30) for i in range(count)]
for connection in connections:
    connection.connect()
barrier = threading.Barrier(count + 1)
results = [None] * count
start = [0.0]


def send(index):
    connection = connections[index]
    barrier.wait()
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        results[index] = [response.status, time.monotonic() - start[0]]
    except OSError:
        results[index] = [0, time.monotonic() - start[0]]


threads = [threading.Thread(target=send, args=(i,)) for i in range(count)]
for thread in threads:
    thread.start()
start[0] = time.monotonic()
barrier.wait()
for thread in threads:
    thread.join()
print(json.dumps(results))
