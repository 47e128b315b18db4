"""Random orders of an exchange's events, end to end: clients and upstream targets that each
choose when their bytes come, so that the proxy's handler meets heads, bodies, ends, answers
and closes in orders a plain test does not try, with an oracle on both hops.

Clients (CONNECTIONS of them, EACH_AT_ONCE at a time, from SEED) send one to four requests on a
connection, pipelined (all their bytes cut at random points) or one after another (heads and
bodies in pieces, with pauses; some with `Expect: 100-continue`, some given up halfway through
a body, some left once a few bytes of an answer came, some ending their side once everything is
sent; a tenth read their answers slowly, a tenth speak HTTP/1.0, keeping the connection alive
or not). Each request carries its id, its body's length and a plan that tells the targets how
to answer it: at once, after a pause, in chunks, after interim answers (100, 103), with
`Connection: close`, before its body was read, by closing without an answer the first time it
is read (so the proxy may send it again), by closing halfway through its body, with a body 300
KB long, or with a body that ends where the connection closes. Some requests are HEADs,
answered with a head alone; some chunked bodies end with a trailer field (over HTTP/2, a
trailing HEADERS). A body is bytes made from its request's id, so a target knows exactly what
it should read. Now and then a request is one the proxy answers itself (no route: 404; TRACE:
405), its body perhaps still coming. With MODE `h2` each client is an HTTP/2 connection
(cleartext, prior knowledge; the `h2` library) whose requests are streams at once, their bodies
sent in turn as the windows allow, some streams reset by the client halfway through the body or
once the answer begins.

The targets (two ports, both this script's) check every request they read: one that nobody
sent (no id) or that no route takes, a body that is not its request's own, a request read
whole more often than its plan allows (twice for the close-once plan, once otherwise; never
for a request the client gave up on). Each client checks its answers, in order: a 200 names
its own request and the digest of the body the target read (so the answer is its own and the
body went whole; an answer to a HEAD has no body), a 502 or 504 only where the plan closes
without answering, the proxy's own 404 and 405 where it answers itself, no `100 Continue`
unasked, no answer missing unless an answer before it said the connection closes (over
HTTP/2: no stream reset before its answer ended, unless by the client), and no wait longer
than 8 s for one. Last, with every exchange over, the route's max_concurrent limiter (SLOTS
slots) must have them all back: SLOTS slow requests are admitted together, and one more
meanwhile is refused.

usage: exchange_orders.py GATEWAY_PORT TARGET_PORT_A TARGET_PORT_B SEED CONNECTIONS EACH_AT_ONCE SLOTS [MODE]
(MODE: http1, the default, or h2)
prints "connections=N requests=R answered=A retried=T failures=F", then each failure; exits 0
when there are none.
"""
import hashlib
import random
import socket
import sys
import threading
import time

from http1_wire import Reader

gateway_port, port_a, port_b = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
seed, connections, at_once = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
slots = int(sys.argv[7])
mode = sys.argv[8] if len(sys.argv) > 8 else "http1"

lock = threading.Lock()
failures = []
reads = {}          # request id -> times a target read it whole
given_up = set()    # request ids whose client stopped halfway through the body
PLANS = ["answer", "slow", "chunked", "early", "close-once", "close-cut", "delimited", "interim", "close-after", "large"]
PLAN_WEIGHTS = [5, 3, 3, 2, 2, 1, 1, 1, 1, 1]
LARGE_ANSWER = 300_000
OK = b"HTTP/1.1 200 OK"


def fail(text):
    with lock:
        failures.append(text)


def body_of(request_id, length):
    pattern = (request_id + ".").encode()
    return (pattern * (length // len(pattern) + 1))[:length]


def cut(data, rng, most):
    """`data` in up to `most` + 1 pieces, cut at random points."""
    if len(data) <= 1:
        return [data] if data else []
    cuts = sorted(rng.sample(range(1, len(data)), min(rng.randint(0, most), len(data) - 1)))
    return [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]


def digest(data):
    return hashlib.sha1(data).hexdigest()[:16]


def answer_text(request_id, body, kind):
    """What a target answers a request with: its id and the digest of the body it read (padded
    to LARGE_ANSWER bytes for the large plan)."""
    text = ("%s:%s" % (request_id, digest(body))).encode()
    return text + b"." * (LARGE_ANSWER - len(text)) if kind == "large" else text


def parse_head(head):
    lines = head[:-4].split(b"\r\n")
    first = lines[0].split(b" ", 2)
    fields = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        fields.append((name.strip().lower().decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return first, fields


def field(fields, name):
    values = [value for key, value in fields if key == name]
    return values[0] if len(values) == 1 else None


def read_body(reader, fields, limit=None):
    """A request's body as its framing says; `limit` stops after that many bytes (None: whole)."""
    names = [name for name, _ in fields]
    if names.count("content-length") > 1 or ("content-length" in names and "transfer-encoding" in names):
        raise ValueError("ambiguous framing: %r" % fields)
    coding, length = field(fields, "transfer-encoding"), field(fields, "content-length")
    if coding is not None:
        if coding.lower() != "chunked":
            raise ValueError("transfer coding %r" % coding)
        body = b""
        while True:
            size = int(reader.until(b"\r\n")[:-2].split(b";")[0], 16)
            if size == 0:
                while reader.until(b"\r\n") != b"\r\n":
                    pass
                return body
            body += reader.exactly(size)
            if reader.exactly(2) != b"\r\n":
                raise ValueError("a chunk without its CRLF")
            if limit is not None and len(body) >= limit:
                return body
    if length is not None:
        count = int(length)
        return reader.exactly(count if limit is None else min(count, limit))
    return b""


def answer(sock, status_line, request_id, body, framing="length", close=False, head_only=False):
    """Writes an answer framed as asked; to a HEAD (`head_only`), its head alone."""
    head = status_line + b"\r\nX-Echo-Id: " + request_id.encode()
    if close:
        head += b"\r\nConnection: close"
    if head_only:
        framing_field = {"length": b"\r\nContent-Length: %d" % len(body), "chunked": b"\r\nTransfer-Encoding: chunked"}.get(framing, b"")
        sock.sendall(head + framing_field + b"\r\n\r\n")
    elif framing == "length":
        sock.sendall(head + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    elif framing == "chunked":
        sock.sendall(head + b"\r\nTransfer-Encoding: chunked\r\n\r\n")
        third = max(1, len(body) // 3)
        for start in range(0, len(body), third):
            piece = body[start:start + third]
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.005)
        sock.sendall(b"0\r\n\r\n")
    else:  # delimited by the close
        sock.sendall(head + b"\r\n\r\n" + body)


def serve(sock):
    """One target connection: reads requests in turn and follows each one's plan."""
    reader = Reader(sock)
    sock.settimeout(15)
    try:
        while True:
            first, fields = parse_head(reader.until(b"\r\n\r\n"))
            request_id, plan = field(fields, "x-id"), field(fields, "x-plan") or ""
            length = int(field(fields, "x-body-length") or "0")
            if request_id is None:
                fail("a target read a request nobody sent: %r %r" % (first, fields))
                return
            if first[0] == b"TRACE" or b"/elsewhere/" in first[1]:
                fail("%s: a target read a request no route takes: %r" % (request_id, first))
                return
            kind, _, parameter = plan.partition(":")
            head_only = first[0] == b"HEAD"
            if kind == "close-cut":
                read_body(reader, fields, limit=length // 2)
                return
            if kind == "early":
                answer(sock, OK, request_id, (request_id + ":early").encode(), head_only=head_only)
            body = read_body(reader, fields)
            expected = body_of(request_id, length)
            if body != expected:
                fail("%s: a target read a body that is not its own (%d bytes, %d expected)" % (request_id, len(body), len(expected)))
                return
            with lock:
                reads[request_id] = reads.get(request_id, 0) + 1
                times = reads[request_id]
            if times > (2 if kind == "close-once" else 1):
                fail("%s: read whole %d times (plan %s)" % (request_id, times, plan))
            if kind == "early":
                continue  # answered already
            if kind == "close-once" and times == 1:
                return
            if kind == "slow":
                time.sleep(int(parameter) / 1000)
            elif kind == "interim":
                # Interim answers first (RFC 9110, 15.2): the proxy drops them, the final one follows.
                sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
            closes = kind in ("delimited", "close-after")
            framing = {"chunked": "chunked", "delimited": "close"}.get(kind, "length")
            answer(sock, OK, request_id, answer_text(request_id, body, kind), framing=framing, close=closes, head_only=head_only)
            if closes:
                return
    except (EOFError, OSError):
        pass
    except ValueError as error:
        fail("a target read what it cannot frame: %s" % error)
    finally:
        sock.close()


def listen(port):
    server = socket.create_server(("127.0.0.1", port))
    server.listen(128)

    def accept():
        while True:
            connection, _ = server.accept()
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()


class Request:
    def __init__(self, rng, request_id, sequential, http10=False):
        self.id = request_id
        self.http10 = http10
        self.method = rng.choice(["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"])
        # Now and then one the proxy answers itself, perhaps before its body came: no route
        # takes its path (404), or its method is never proxied (405).
        self.local = rng.choices([None, 404, 405], [22, 2, 1])[0]
        if self.local == 405:
            self.method = "TRACE"
        self.framing = "none" if self.method in ("GET", "HEAD", "DELETE") else rng.choice(["length", "chunked", "none"])
        # A body the proxy answers before it came may be longer than it reads to drop it.
        sizes = [0, 1, 700, 20000, 90000] + ([1_200_000] * 2 if self.local is not None else [])
        self.length = rng.choice(sizes) if self.framing != "none" else 0
        if self.length > 1 << 20:
            # Past the proxy's discard budget, a body is dropped only so far, and then the
            # connection closes: its answer can say so only when the length is known upfront.
            self.framing = "length"
        if http10 and self.framing == "chunked":
            self.framing = "length"  # HTTP/1.0 has no chunked coding
        kind = rng.choices(PLANS, PLAN_WEIGHTS)[0]
        self.plan = kind + (":%d" % rng.randint(1, 40) if kind == "slow" else "")
        self.expect = sequential and not http10 and self.length > 0 and rng.random() < 0.25
        self.body = body_of(request_id, self.length)
        self.path = ("/elsewhere/" if self.local == 404 else "/orders/") + request_id
        head = "%s %s HTTP/1.%d\r\nHost: orders.test\r\nX-Id: %s\r\nX-Plan: %s\r\nX-Body-Length: %d\r\n" % (
            self.method, self.path, 0 if http10 else 1, request_id, self.plan, self.length)
        if http10 and rng.random() < 0.7:
            head += "Connection: keep-alive\r\n"
        if self.framing == "length":
            head += "Content-Length: %d\r\n" % self.length
        elif self.framing == "chunked":
            head += "Transfer-Encoding: chunked\r\n"
        if self.expect:
            head += "Expect: 100-continue\r\n"
        self.head = (head + "\r\n").encode()
        self.body_pieces = self.cut_body(rng)

    def cut_body(self, rng):
        parts = cut(self.body, rng, 2)
        # Some chunked bodies end with a trailer field.
        self.trailer = self.framing == "chunked" and rng.random() < 0.3
        if self.framing == "chunked":
            last = b"0\r\nX-Checksum: %s\r\n\r\n" % digest(self.body).encode() if self.trailer else b"0\r\n\r\n"
            return [b"%x\r\n%s\r\n" % (len(part), part) for part in parts] + [last]
        return parts

    @property
    def wire(self):
        return self.head + b"".join(self.body_pieces)

    @property
    def h2_fields(self):
        """The same request as an HTTP/2 header list (a chunked one: DATA with no length)."""
        fields = [(":method", self.method), (":scheme", "http"), (":path", self.path), (":authority", "orders.test"),
                  ("x-id", self.id), ("x-plan", self.plan), ("x-body-length", str(self.length))]
        if self.framing == "length":
            fields.append(("content-length", str(self.length)))
        return fields


class SlowReader(Reader):
    """A client that takes its answers a little at a time (with a small receive buffer, so
    that the proxy's writes back up)."""

    def fill(self):
        time.sleep(0.001)
        chunk = self.sock.recv(4096)
        if not chunk:
            raise EOFError
        self.data += chunk


class Answers:
    """Reads a connection's answers as a client does."""

    def __init__(self, sock, slow=False):
        self.reader = SlowReader(sock) if slow else Reader(sock)

    def next(self, request):
        """(status, fields, body), skipping a 100 Continue the request asked for."""
        while True:
            first, fields = parse_head(self.reader.until(b"\r\n\r\n"))
            status = int(first[1])
            if status == 100:
                if not request.expect:
                    fail("%s: a 100 Continue it did not ask for" % request.id)
                continue
            coding, length = field(fields, "transfer-encoding"), field(fields, "content-length")
            if request.method == "HEAD":
                body = b""
            elif coding is not None:
                body = read_body(self.reader, [("transfer-encoding", coding)])
            elif length is not None:
                body = self.reader.exactly(int(length))
            elif status in (204, 304):
                body = b""
            else:
                body = self.reader.rest()
            return status, fields, body


def check(request, status, fields, body):
    """Checks one answer; returns whether the client may go on on this connection."""
    kind = request.plan.partition(":")[0]
    connection = (field(fields, "connection") or "").lower()
    # An HTTP/1.0 answer closes unless it says keep-alive.
    closing = connection == "close" or (request.http10 and connection != "keep-alive")
    if request.local is not None:
        if status != request.local:
            fail("%s: status %d where the proxy answers %d itself" % (request.id, status, request.local))
    elif status == 200:
        if field(fields, "x-echo-id") != request.id:
            fail("%s: answered by another request's answer (%r)" % (request.id, field(fields, "x-echo-id")))
        elif request.method == "HEAD":
            if body:
                fail("%s: a body in the answer to a HEAD (%r)" % (request.id, body[:80]))
        elif kind == "early":
            if body != (request.id + ":early").encode():
                fail("%s: the early answer's body is %r" % (request.id, body[:80]))
        elif body != answer_text(request.id, request.body, kind):
            fail("%s: the target read another body than the one sent (%r)" % (request.id, body[:80]))
        elif kind == "close-cut":
            fail("%s: 200 for a request no target answered" % request.id)
    elif status in (502, 504):
        if kind not in ("close-once", "close-cut"):
            fail("%s: %d for a request its target answers (plan %s)" % (request.id, status, request.plan))
    else:
        fail("%s: status %d (plan %s)" % (request.id, status, request.plan))
    return not closing


def client(number, rng, counts):
    sequential = rng.random() < 0.5
    http10 = rng.random() < 0.1
    requests = [Request(rng, "%d-%d" % (number, index), sequential, http10) for index in range(rng.randint(1, 4))]
    give_up = sequential and rng.random() < 0.08 and requests[-1].length > 1
    # Or, having sent everything, reads a few bytes of an answer and goes; or ends its side
    # (a FIN, as a close sends), after which what is still in flight may go unanswered.
    leave_early = not give_up and rng.random() < 0.06
    half_close = not sequential and not leave_early and rng.random() < 0.06
    slow_reader = rng.random() < 0.1
    sock = socket.socket()
    if slow_reader:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", gateway_port))
    sock.settimeout(8)
    answers = Answers(sock, slow=slow_reader)
    answered = 0

    def take_answer(request):
        """Reads and checks the request's answer: whether the connection carries on."""
        nonlocal answered
        try:
            status, fields, body = answers.next(request)
        except EOFError:
            if not half_close:
                fail("%s: no answer, and the proxy never said it would close (%s)" % (request.id, "one after another" if sequential else "pipelined"))
            return False
        answered += 1
        return check(request, status, fields, body)

    try:
        if not sequential:
            for piece in cut(b"".join(request.wire for request in requests), rng, 5):
                sock.sendall(piece)
                time.sleep(rng.choice([0, 0, 0.002, 0.02]))
            if leave_early:
                sock.recv(rng.choice([1, 40]))
                return
            if half_close:
                sock.shutdown(socket.SHUT_WR)
            for request in requests:
                if not take_answer(request):
                    break
        else:
            for position, request in enumerate(requests):
                last = position == len(requests) - 1
                sock.sendall(request.head)
                if request.expect:
                    time.sleep(rng.choice([0, 0.01, 0.05]))
                pieces = request.body_pieces
                if give_up and last:
                    sock.sendall(request.body[: request.length // 2] if request.framing == "length" else pieces[0][: len(pieces[0]) // 2])
                    with lock:
                        given_up.add(request.id)
                    time.sleep(rng.choice([0, 0.02]))
                    return
                for piece in pieces:
                    sock.sendall(piece)
                    time.sleep(rng.choice([0, 0, 0.003, 0.03]))
                if not take_answer(request):
                    break
    except socket.timeout:
        fail("connection %d: no answer within 8 s" % number)
    except (ConnectionError, OSError) as error:
        fail("connection %d: %r" % (number, error))
    except ValueError as error:
        fail("connection %d: an answer it cannot frame: %s" % (number, error))
    finally:
        sock.close()
        with lock:
            counts["requests"] += len(requests)
            counts["answered"] += answered


def slots_given_back():
    """Once every exchange is over, the route's max_concurrent limiter has all its slots: as
    many slow requests as it has slots are each admitted while they hold them all, and one
    more is refused (429) meanwhile."""
    holders = []
    for index in range(slots):
        sock = socket.create_connection(("127.0.0.1", gateway_port))
        sock.settimeout(8)
        request_id = "slot-%d" % index
        sock.sendall(("GET /orders/%s HTTP/1.1\r\nHost: orders.test\r\nX-Id: %s\r\nX-Plan: slow:800\r\n\r\n" % (request_id, request_id)).encode())
        holders.append(sock)
    time.sleep(0.3)
    extra = socket.create_connection(("127.0.0.1", gateway_port))
    extra.settimeout(8)
    extra.sendall(b"GET /orders/slot-extra HTTP/1.1\r\nHost: orders.test\r\nX-Id: slot-extra\r\nX-Plan: answer\r\n\r\n")
    status = int(Reader(extra).until(b"\r\n").split(b" ")[1])
    if status != 429:
        fail("one request more than the limiter's %d slots, while they are all held: %d, not 429" % (slots, status))
    extra.close()
    for index, sock in enumerate(holders):
        try:
            status = int(Reader(sock).until(b"\r\n").split(b" ")[1])
        except (EOFError, OSError) as error:
            status = repr(error)
        if status != 200:
            fail("slot-%d: %s, not 200: a slot was still held after every exchange ended" % (index, status))
        sock.close()


class Stream:
    """One request of an HTTP/2 client connection, and what came back on its stream."""

    def __init__(self, rng, request):
        self.request = request
        self.sent = 0
        # Some streams are reset by the client halfway through the body, some once the answer
        # begins.
        self.give_up_at = request.length // 2 if request.length > 1 and rng.random() < 0.08 else None
        self.leaves = self.give_up_at is None and rng.random() < 0.06
        self.status, self.fields, self.body = None, [], b""
        self.sending = request.length > 0
        self.finished = False


def h2_client(number, rng, counts):
    """One HTTP/2 connection (cleartext, prior knowledge) carrying one to four requests as
    streams at once, their bodies sent in pieces in turn as the windows allow."""
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions

    requests = [Request(rng, "%d-%d" % (number, index), False) for index in range(rng.randint(1, 4))]
    sock = socket.create_connection(("127.0.0.1", gateway_port))
    sock.settimeout(0.02)
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="latin-1"))
    connection.initiate_connection()
    streams = {}
    for request in requests:
        stream_id = connection.get_next_available_stream_id()
        connection.send_headers(stream_id, request.h2_fields, end_stream=request.length == 0)
        streams[stream_id] = Stream(rng, request)
    answered = 0

    def finish(stream_id, stream):
        nonlocal answered
        stream.finished = True
        answered += 1
        check(stream.request, stream.status, stream.fields, stream.body)

    def reset(stream_id):
        try:
            connection.reset_stream(stream_id, error_code=8)  # CANCEL
        except h2.exceptions.StreamClosedError:
            pass  # both sides ended meanwhile

    def send_some():
        for stream_id, stream in streams.items():
            if not stream.sending:
                continue
            request = stream.request
            if stream.give_up_at is not None and stream.sent >= stream.give_up_at:
                with lock:
                    given_up.add(request.id)
                reset(stream_id)
                stream.sending, stream.finished = False, True
                continue
            room = min(connection.local_flow_control_window(stream_id), connection.max_outbound_frame_size)
            end = stream.give_up_at if stream.give_up_at is not None else request.length
            size = min(room, rng.choice([1, 700, 5000, 30000]), end - stream.sent)
            if size <= 0:
                continue
            last = stream.sent + size == request.length
            try:
                connection.send_data(stream_id, request.body[stream.sent:stream.sent + size], end_stream=last and not request.trailer)
                if last and request.trailer:
                    connection.send_headers(stream_id, [("x-checksum", digest(request.body))], end_stream=True)
            except h2.exceptions.StreamClosedError:
                stream.sending = False  # answered and reset meanwhile: the rest is not wanted
                continue
            stream.sent += size
            stream.sending = stream.sent < request.length

    def handle(event):
        stream = streams.get(getattr(event, "stream_id", None))
        if isinstance(event, h2.events.ResponseReceived):
            stream.status = int(dict(event.headers)[":status"])
            stream.fields = [(name.lower(), value) for name, value in event.headers if not name.startswith(":")]
            if stream.leaves:
                reset(event.stream_id)
                stream.sending, stream.finished = False, True
        elif isinstance(event, h2.events.DataReceived):
            if stream is not None:
                stream.body += event.data
            try:
                connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            except h2.exceptions.StreamClosedError:
                pass
        elif isinstance(event, h2.events.StreamEnded):
            if not stream.finished:
                finish(event.stream_id, stream)
        elif isinstance(event, h2.events.StreamReset):
            stream.sending = False
            if not stream.finished:
                fail("%s: stream reset (%s) before its answer ended" % (stream.request.id, event.error_code))
                stream.finished = True
        elif isinstance(event, h2.events.ConnectionTerminated):
            raise EOFError("GOAWAY %s" % event.error_code)

    deadline = time.time() + 8
    try:
        while not all(stream.finished and not stream.sending for stream in streams.values()):
            if time.time() > deadline:
                fail("connection %d (HTTP/2): streams unanswered after 8 s" % number)
                break
            send_some()
            sock.sendall(connection.data_to_send())
            if rng.random() < 0.3:
                time.sleep(rng.choice([0.002, 0.02]))
            try:
                data = sock.recv(65536)
            except socket.timeout:
                continue
            if not data:
                raise EOFError("the connection closed")
            for event in connection.receive_data(data):
                handle(event)
            sock.sendall(connection.data_to_send())
    except EOFError as error:
        unfinished = [stream.request.id for stream in streams.values() if not stream.finished]
        if unfinished:
            fail("connection %d (HTTP/2): %s with %s unanswered" % (number, error, unfinished))
    except (ConnectionError, OSError) as error:
        fail("connection %d (HTTP/2): %r" % (number, error))
    finally:
        sock.close()
        with lock:
            counts["requests"] += len(requests)
            counts["answered"] += answered


def main():
    listen(port_a)
    listen(port_b)
    counts = {"requests": 0, "answered": 0}
    threads = []
    for number in range(connections):
        rng = random.Random(seed * 1_000_003 + number)
        thread = threading.Thread(target=h2_client if mode == "h2" else client, args=(number, rng, counts), daemon=True)
        thread.start()
        threads.append(thread)
        while sum(t.is_alive() for t in threads) >= at_once:
            time.sleep(0.001)
    for thread in threads:
        thread.join(30)
    time.sleep(0.3)  # a request a client gave up on may still be on its way to a target
    with lock:
        for request_id, times in reads.items():
            if request_id in given_up:
                fail("%s: read whole by a target though its client gave up halfway" % request_id)
        retried = sum(1 for times in reads.values() if times > 1)
    slots_given_back()
    print("connections=%d requests=%d answered=%d retried=%d failures=%d" % (
        connections, counts["requests"], counts["answered"], retried, len(failures)), flush=True)
    for text in failures[:40]:
        print(text, flush=True)
    sys.exit(1 if failures else 0)


main()
