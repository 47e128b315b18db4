"""Mutated requests and answers on both hops of a proxy, with an oracle for each.

Requests: templates of requests whose bodies hold a whole request for `/smuggled`, mutated
(bytes inserted, deleted, lines repeated, case flipped) and sent each on its own connection
to a proxy in front of Tests/interop/recording_upstream.py. After each, the requests the
upstream read must be no more than the requests the proxy's access log says it forwarded,
and a `/smuggled` request may reach the upstream only when the log shows it routed as one.
A framing error the upstream reports means the proxy forwarded bytes it did not frame.

HTTP/2 requests: the same oracle, for one request per prior-knowledge connection whose fields
are mutated (CR, LF, NUL, separators and a whole request inserted into names and values;
connection-specific, framing and pseudo-header fields added; fields dropped), its body a whole
request.

Responses: an upstream that answers each request with a mutated response and then, on most
connections, sends unsolicited bytes that make a whole second response (`POISON`). Clients
send two requests in turn on one connection, read the answers as a client would, and must
never be handed that second response as an answer. `h2responses` does the same with two
streams in turn on one HTTP/2 connection.

usage:
  framing_mutations.py requests PORT RECORDED_LOG ACCESS_LOG SEED CASES
  framing_mutations.py h2requests PORT RECORDED_LOG ACCESS_LOG SEED CASES
  framing_mutations.py upstream SEED        (prints "listening on 127.0.0.1:PORT")
  framing_mutations.py responses PORT CASES
  framing_mutations.py h2responses PORT CASES
prints "cases=N forwarded=F failures=X" (the request modes) or "cases=N failures=X", and each
failing case.
"""
import json
import random
import re
import socket
import sys
import threading
import time

import h2_wire

SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
REQUESTS = [
    b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED
    + b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(SMUGGLED) + SMUGGLED
    + b"\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /a HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n" % len(SMUGGLED)
    + SMUGGLED + b"\r\n0\r\n\r\n",
    b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: content-length\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
    b"TRACE /a HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
    b"POST /a HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-T: 1\r\n\r\n" + SMUGGLED,
    b"GET /a HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n" + SMUGGLED,
    b"POST /a HTTP/1.0\r\nHost: a\r\nContent-Length: %d\r\nConnection: keep-alive\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
    b"POST /a HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(SMUGGLED) + SMUGGLED,
]
REQUEST_TOKENS = [
    b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x00", b"\x0b", b"\x0c", b",", b";", b'"', b"chunked",
    b"Content-Length: ", b"Transfer-Encoding: ", b"0", b"1", b"5", b"f", b"-", b"+", b"Connection: ",
    b"close", b"keep-alive", b":", b"\x80", b"\xff", b"identity", b"HTTP/1.0", b"\r\n\r\n", b"0\r\n\r\n",
    b"Host: b\r\n", b"Upgrade: h2c\r\n", b"%2f", b"..", b"CONNECT", b"x",
]

POISON = b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nPOISON"
RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;a=b\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 5\r\n\r\nhello",
]
RESPONSE_TOKENS = [
    b" ", b"\t", b"\r", b"\n", b"\r\n", b"\x00", b",", b";", b"chunked", b"Content-Length: ",
    b"Transfer-Encoding: ", b"0", b"1", b"5", b"a", b"-", b"+", b"Connection: ", b"close", b"keep-alive",
    b":", b"\x80", b"HTTP/1.0", b"\r\n\r\n", b"0\r\n\r\n", b"101", b"Upgrade: x\r\n",
]


def mutate(rng, template, tokens):
    data = bytearray(template)
    for _ in range(rng.randint(1, 4)):
        kind, at = rng.random(), rng.randrange(len(data) + 1)
        if kind < 0.45:
            data[at:at] = rng.choice(tokens)
        elif kind < 0.7 and len(data) > 1:
            del data[at:at + rng.randint(1, 3)]
        elif kind < 0.85:
            lines = bytes(data).split(b"\r\n")
            line = rng.randrange(len(lines))
            lines.insert(line, lines[line])
            data = bytearray(b"\r\n".join(lines))
        else:
            end = min(len(data), at + rng.randint(1, 8))
            data[at:end] = bytes(data[at:end]).swapcase()
    return bytes(data)


def exchange(port, messages, quiet=0.3):
    """Sends each message in turn on one connection, reading until the server closes or stays
    silent for `quiet` seconds after each; returns everything read."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(quiet)
    received = b""
    try:
        for message in messages:
            sock.sendall(message)
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return received
                received += chunk
    except OSError:
        return received
    finally:
        sock.close()


class LogTail:
    """The JSON lines appended to a file since the last call."""

    def __init__(self, path):
        open(path, "a").close()
        self.file = open(path, encoding="utf-8")
        self.file.seek(0, 2)
        self.pending = ""

    def new(self):
        self.pending += self.file.read()
        lines, _, self.pending = self.pending.rpartition("\n")
        return [json.loads(line) for line in lines.split("\n") if line.strip()]


def settled(tails, quiet=0.15, deadline=3.0):
    """What each log gained until none has changed for `quiet` seconds (the access log is
    written in batches, within 50 ms)."""
    gained = [[] for _ in tails]
    end, still_since = time.time() + deadline, time.time()
    while time.time() < end and time.time() - still_since < quiet:
        time.sleep(0.03)
        for index, tail in enumerate(tails):
            lines = tail.new()
            if lines:
                gained[index] += lines
                still_since = time.time()
    return gained


def suspicious(read, logged):
    """Whether the upstream read what the proxy did not route: more requests than it logged as
    forwarded, a `/smuggled` request it did not route as one, or bytes it could not frame."""
    routed = [line for line in logged if line.get("upstream")]
    smuggled_read = sum(1 for line in read if line.get("target", "").startswith("/smuggled"))
    smuggled_routed = sum(1 for line in routed if line.get("path", "").startswith("/smuggled"))
    return any("error" in line for line in read) or len(read) > len(routed) or smuggled_read > smuggled_routed


def run_oracle(recorded_path, access_path, cases, send_case):
    """Sends `cases` cases (`send_case(case)` sends one and returns what to print of it if it
    fails) and checks what each brought to the upstream against the access log."""
    recorded, access = LogTail(recorded_path), LogTail(access_path)
    forwarded = failures = 0
    for case in range(cases):
        sent = send_case(case)
        read, logged = settled([recorded, access])
        if suspicious(read, logged):
            # A line late to its log, perhaps: look again over a longer quiet spell.
            more_read, more_logged = settled([recorded, access], quiet=1.0)
            read, logged = read + more_read, logged + more_logged
        forwarded += len(read)
        if suspicious(read, logged):
            failures += 1
            print("FAILED case %d: %r\n  upstream read %r\n  access log %r" % (
                case, sent, [(r.get("method"), r.get("target"), r.get("error")) for r in read],
                [(l["method"], l["path"], l["status"]) for l in logged]), flush=True)
    print("cases=%d forwarded=%d failures=%d" % (cases, forwarded, failures), flush=True)
    return failures


def run_requests(port, recorded_path, access_path, seed, cases):
    rng = random.Random(seed)

    def send_case(_):
        data = mutate(rng, rng.choice(REQUESTS), REQUEST_TOKENS)
        exchange(port, [data], quiet=0.15)
        return data
    return run_oracle(recorded_path, access_path, cases, send_case)


H2_REQUEST = [(b":method", b"POST"), (b":scheme", b"http"), (b":path", b"/a"), (b":authority", b"a"),
              (b"content-length", b"%d" % len(SMUGGLED))]
H2_TOKENS = [b"\r\n", b"\r", b"\n", b"\x00", b" ", b"\t", b":", b",", b"A", b"/", b"..", b"%2f", b"?", b"#",
             b"\r\n" + SMUGGLED, b"chunked", b"0", b"1", b"-"]
H2_EXTRA_FIELDS = [(b"transfer-encoding", b"chunked"), (b"connection", b"content-length"), (b"te", b"gzip"),
                   (b"te", b"trailers"), (b"host", b"b"), (b"host", b"a"), (b"content-length", b"0"),
                   (b"upgrade", b"h2c"), (b":method", b"GET"), (b":path", b"/smuggled"), (b"keep-alive", b"1")]


def mutate_fields(rng):
    fields = list(H2_REQUEST)
    for _ in range(rng.randint(1, 2)):
        kind = rng.random()
        if kind < 0.5:
            index = rng.randrange(len(fields))
            name, value = fields[index]
            if rng.random() < 0.3:
                at = rng.randrange(len(name) + 1)
                name = name[:at] + rng.choice(H2_TOKENS) + name[at:]
            else:
                at = rng.randrange(len(value) + 1)
                value = value[:at] + rng.choice(H2_TOKENS) + value[at:]
            fields[index] = (name, value)
        elif kind < 0.8:
            fields.insert(rng.randrange(len(fields) + 1), rng.choice(H2_EXTRA_FIELDS))
        elif len(fields) > 1:
            del fields[rng.randrange(len(fields))]
    return fields


def h2_exchange(port, fields, body, quiet=0.15):
    """One request on a prior-knowledge HTTP/2 connection; reads until the server closes or
    stays silent for `quiet` seconds."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(quiet)
    block = b"".join(h2_wire.literal(name, value) for name, value in fields)
    try:
        sock.sendall(h2_wire.PREFACE + h2_wire.frame(4, 0, 0) + h2_wire.frame(1, 0x4, 1, block)
                     + h2_wire.frame(0, 0x1, 1, body))
        while sock.recv(65536):
            pass
    except OSError:
        pass
    finally:
        sock.close()


def run_h2_requests(port, recorded_path, access_path, seed, cases):
    rng = random.Random(seed)

    def send_case(_):
        fields = mutate_fields(rng)
        body = SMUGGLED if rng.random() < 0.8 else SMUGGLED[:rng.randrange(len(SMUGGLED))]
        h2_exchange(port, fields, body)
        return fields
    return run_oracle(recorded_path, access_path, cases, send_case)


def serve_mutated(rng, sock):
    buffered = b""
    try:
        while True:
            while b"\r\n\r\n" not in buffered:
                chunk = sock.recv(65536)
                if not chunk:
                    return
                buffered += chunk
            _, buffered = buffered.split(b"\r\n\r\n", 1)  # the requests sent here carry no body
            sock.sendall(mutate(rng, rng.choice(RESPONSES), RESPONSE_TOKENS))
            if rng.random() < 0.7:
                sock.sendall(POISON)
    except OSError:
        pass
    finally:
        sock.close()


def run_upstream(seed):
    rng = random.Random(seed)
    server = socket.create_server(("127.0.0.1", 0), backlog=64)
    print("listening on 127.0.0.1:%d" % server.getsockname()[1], flush=True)
    while True:
        client, _ = server.accept()
        # One connection's answers are drawn from its own generator, seeded from the shared one
        # in accept order, so that threads never share a generator.
        threading.Thread(target=serve_mutated, args=(random.Random(rng.random()), client), daemon=True).start()


def responses(data, methods):
    """The answers in `data` to requests of `methods`, read as a client reads them: (status,
    fields, body) each, interim answers skipped; stops at the end of the bytes or at an answer cut
    short. Raises ValueError on bytes no client could read as an answer."""
    answers = []
    for method in methods:
        while True:
            if not data:
                return answers
            head, separator, data = data.partition(b"\r\n\r\n")
            if not separator:
                return answers
            lines = head.split(b"\r\n")
            status = re.fullmatch(rb"HTTP/1\.[01] (\d{3})( .*)?", lines[0])
            if not status:
                raise ValueError("an answer starts with %r" % lines[0][:80])
            code = int(status.group(1))
            if code >= 200:
                break
        fields = {}
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            if not colon:
                raise ValueError("a field line %r" % line[:80])
            fields.setdefault(name.strip().lower(), []).append(value.strip())
        body = b""
        if method == b"HEAD" or code in (204, 304):
            pass
        elif fields.get(b"transfer-encoding") == [b"chunked"]:
            while True:
                size, separator, rest = data.partition(b"\r\n")
                if not separator:
                    return answers
                length = int(size.split(b";")[0], 16)
                if length == 0:
                    data = rest.partition(b"\r\n\r\n")[2] if not rest.startswith(b"\r\n") else rest[2:]
                    break
                body, data = body + rest[:length], rest[length + 2:]
        elif b"content-length" in fields:
            length = int(fields[b"content-length"][0])
            if len(data) < length:
                return answers
            body, data = data[:length], data[length:]
        else:
            body, data = data, b""
        answers.append((code, fields, body))
    if data:
        raise ValueError("%d bytes after the last answer: %r" % (len(data), data[:80]))
    return answers


def is_poison(fields, body):
    """The unsolicited answer: its body, or (to a HEAD) its length, which no mutated answer has."""
    return body == b"POISON" or fields.get(b"content-length") == [b"6"]


def run_responses(port, cases):
    failures = 0
    for case in range(cases):
        method = b"HEAD" if case % 3 == 2 else b"GET"
        request = method + b" /x HTTP/1.1\r\nHost: a\r\n\r\n"
        answer = exchange(port, [request, request], quiet=0.15)
        try:
            answers = responses(answer, [method, method])
            failure = any(is_poison(fields, body) for _, fields, body in answers) and "the unsolicited answer was handed to the client"
        except ValueError as error:
            failure = str(error)
        if failure:
            failures += 1
            print("FAILED case %d: %s\n  %r" % (case, failure, answer[:400]), flush=True)
    print("cases=%d failures=%d" % (cases, failures), flush=True)
    return failures


def h2_answer_bodies(port, pause=0.05):
    """Two GET requests in turn on one prior-knowledge HTTP/2 connection (the second `pause`
    seconds after the first's answer ended, the first as long after whatever came before):
    each stream's DATA, as read. The pauses make the unsolicited answer unmistakable: sent
    right after an answer, it reaches the proxy before the next request could, whereas sent
    as a request goes out it could be that request's answer for all anyone can tell."""
    time.sleep(pause)
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(0.3)
    block = (h2_wire.literal(b":method", b"GET") + h2_wire.literal(b":scheme", b"http")
             + h2_wire.literal(b":path", b"/x") + h2_wire.literal(b":authority", b"a"))
    bodies, stream = {1: b"", 3: b""}, 1
    try:
        sock.sendall(h2_wire.PREFACE + h2_wire.frame(4, 0, 0) + h2_wire.frame(1, 0x5, stream, block))
        for kind, flags, on, payload in h2_wire.frames(sock, 3, with_flags=True):
            if kind == 7:  # GOAWAY
                break
            if on != stream:
                continue
            if kind == 0:
                bodies[stream] += payload
            if kind == 3 or kind in (0, 1) and flags & 0x1:  # RST_STREAM, or END_STREAM
                if stream == 3:
                    break
                stream = 3
                time.sleep(pause)
                sock.sendall(h2_wire.frame(1, 0x5, stream, block))
    except OSError:
        pass
    finally:
        sock.close()
    return bodies


def run_h2_responses(port, cases):
    failures = 0
    for case in range(cases):
        bodies = h2_answer_bodies(port)
        if b"POISON" in bodies.values():
            failures += 1
            print("FAILED case %d: the unsolicited answer was handed to the client\n  %r" % (case, bodies), flush=True)
    print("cases=%d failures=%d" % (cases, failures), flush=True)
    return failures


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "requests":
        sys.exit(1 if run_requests(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])) else 0)
    elif mode == "h2requests":
        sys.exit(1 if run_h2_requests(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6])) else 0)
    elif mode == "upstream":
        run_upstream(int(sys.argv[2]))
    elif mode == "h2responses":
        sys.exit(1 if run_h2_responses(int(sys.argv[2]), int(sys.argv[3])) else 0)
    elif mode == "responses":
        sys.exit(1 if run_responses(int(sys.argv[2]), int(sys.argv[3])) else 0)
    sys.exit("unknown mode %r" % mode)
