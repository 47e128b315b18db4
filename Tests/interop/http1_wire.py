"""Bytes read from a socket as HTTP/1.1's framing asks for them, for the raw clients and
upstreams of these tests."""


class Reader:
    """A socket's bytes, taken up to a marker, by count, or to the close."""

    def __init__(self, sock):
        self.sock = sock
        self.data = b""

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        self.data += chunk

    def until(self, marker):
        while marker not in self.data:
            self.fill()
        index = self.data.index(marker) + len(marker)
        taken, self.data = self.data[:index], self.data[index:]
        return taken

    def exactly(self, count):
        while len(self.data) < count:
            self.fill()
        taken, self.data = self.data[:count], self.data[count:]
        return taken

    def rest(self):
        """Everything until the peer closes (a body delimited by the close)."""
        try:
            while True:
                self.fill()
        except (EOFError, OSError):
            pass
        taken, self.data = self.data, b""
        return taken
