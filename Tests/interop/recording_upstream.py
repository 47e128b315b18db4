"""A strict HTTP/1.1 upstream that records every request it reads, byte for byte.

It frames requests as RFC 9112 says (Content-Length, chunked, or no body), so anything a proxy
forwards unframed shows up here as an extra request. Each request is answered
`200` with the body `request N`; a target starting with `/extra` is answered and then followed by
more bytes the proxy never asked for (a whole response, or with `/extra-partial` half a head).
Answers that frame or label themselves oddly: `/no-content` is a 204 that states a length,
`/with-trailers` a chunked body whose trailer section names framing and routing fields, and
`/status-NNN` carries the status code NNN as sent.

usage: recording_upstream.py LOG_FILE
prints "listening on 127.0.0.1:PORT", then appends one JSON line per request (or framing error) to LOG_FILE:
{"connection": C, "request": N, "method": ..., "target": ..., "headers": [[name, value], ...],
 "head": <the head as received, latin-1>, "body": <the decoded body, latin-1>,
 "trailers": [[name, value], ...] (a chunked body's trailer section)}
"""
import json
import socket
import sys
import threading

from http1_wire import Reader

log_path = sys.argv[1]
lock = threading.Lock()
counter = {"requests": 0, "connections": 0}


def record(entry):
    with lock:
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(entry) + "\n")


def serve(sock, connection):
    reader = Reader(sock)
    try:
        while True:
            head = reader.until(b"\r\n\r\n")
            lines = head[:-4].split(b"\r\n")
            method, target, _ = lines[0].split(b" ")
            headers = []
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers.append([name.decode("latin-1"), value.strip(b" \t").decode("latin-1")])
            names = [name.lower() for name, _ in headers]
            if names.count("content-length") > 1 or ("content-length" in names and "transfer-encoding" in names):
                raise ValueError("ambiguous framing")
            body = b""
            trailers = []
            coding = [value for name, value in headers if name.lower() == "transfer-encoding"]
            length = [value for name, value in headers if name.lower() == "content-length"]
            if coding:
                if coding != ["chunked"]:
                    raise ValueError("transfer coding %r" % coding)
                while True:
                    size = int(reader.until(b"\r\n")[:-2].split(b";")[0], 16)
                    if size == 0:
                        section = reader.until(b"\r\n\r\n") if not reader.data.startswith(b"\r\n") else reader.exactly(2)
                        for line in section[:-4].split(b"\r\n") if len(section) > 2 else []:
                            name, _, value = line.partition(b":")
                            trailers.append([name.decode("latin-1"), value.strip(b" \t").decode("latin-1")])
                        break
                    body += reader.exactly(size)
                    if reader.exactly(2) != b"\r\n":
                        raise ValueError("chunk without CRLF")
            elif length:
                body = reader.exactly(int(length[0]))
            with lock:
                counter["requests"] += 1
                number = counter["requests"]
            record({
                "connection": connection, "request": number, "method": method.decode("latin-1"),
                "target": target.decode("latin-1"), "headers": headers, "head": head.decode("latin-1"),
                "body": body.decode("latin-1"), "trailers": trailers,
            })
            answer = b"request %d" % number
            response = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(answer), answer)
            if target.startswith(b"/no-content"):
                response = b"HTTP/1.1 204 No Content\r\nContent-Length: %d\r\n\r\n" % len(answer)
            elif target.startswith(b"/with-trailers"):
                response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n" % (len(answer), answer)
                response += b"Content-Length: 50\r\nHost: evil\r\nTransfer-Encoding: chunked\r\nX-Checksum: abc\r\n\r\n"
            elif target.startswith(b"/status-"):
                response = b"HTTP/1.1 %s Odd\r\nContent-Length: %d\r\n\r\n%s" % (target[8:11], len(answer), answer)
            if target.startswith(b"/extra-partial"):
                response += b"HTTP/1.1 200 OK\r\nContent-Le"
            elif target.startswith(b"/extra"):
                response += b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nevil"
            sock.sendall(response)
    except EOFError:
        pass
    except (ValueError, IndexError) as error:
        record({"connection": connection, "error": str(error)})
    except OSError:
        pass
    finally:
        sock.close()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 0))
server.listen(64)
print("listening on 127.0.0.1:%d" % server.getsockname()[1], flush=True)
while True:
    client, _ = server.accept()
    with lock:
        counter["connections"] += 1
        number = counter["connections"]
    threading.Thread(target=serve, args=(client, number), daemon=True).start()
