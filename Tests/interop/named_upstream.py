"""An HTTP/1.1 upstream that answers every request (GET or POST) with its own name, so a test can
tell which of several targets served it. GET /healthz answers 200. A NAME starting with "broken"
reads each request and closes the connection without a byte of answer.

usage: named_upstream.py NAME PORT    (PORT 0: a free one)
prints "listening on 127.0.0.1:PORT"
"""
import http.server
import socketserver
import sys

name, port = sys.argv[1], int(sys.argv[2])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        if name.startswith("broken"):
            self.close_connection = True
            return
        body = name.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


server = Server(("127.0.0.1", port), Handler)
print("listening on 127.0.0.1:%d" % server.server_address[1], flush=True)
server.serve_forever()
