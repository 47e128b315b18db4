"""Opens several keep-alive connections; on each, sends one request with a body of the given size
and reads its whole answer; then holds every connection open, idle, so the server's memory can be
looked at.

usage: idle_after_body.py PORT CONNECTIONS BODY_BYTES
prints "idle=N statuses=S" (S: the distinct statuses answered) once all are idle, then holds for 30 s
"""
import http.client
import sys
import time

port, connections, size = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
body = b"x" * size

held, statuses = [], set()
for _ in range(connections):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/upload", body=body, headers={"Host": "a"})
    answer = connection.getresponse()
    answer.read()
    statuses.add(str(answer.status))
    held.append(connection)
print("idle=%d statuses=%s" % (len(held), ",".join(sorted(statuses))), flush=True)
time.sleep(30)
