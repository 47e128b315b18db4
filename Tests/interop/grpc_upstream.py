"""A gRPC server (the `grpcio` library), its messages raw bytes (no protobuf needed):
/test.Greeter/Say answers b"hello " + the request; /test.Greeter/Count streams the request's
number of messages; /test.Greeter/Fail ends with NOT_FOUND and a message; the standard
/grpc.health.v1.Health/Check answers SERVING (a HealthCheckResponse, encoded by hand).

usage: grpc_upstream.py
prints "listening on 127.0.0.1:PORT"; then serves until killed.
"""
from concurrent import futures

import grpc


def say(request, context):
    return b"hello " + request


def count(request, context):
    for index in range(int(request)):
        yield b"message %d" % index


def fail(request, context):
    context.abort(grpc.StatusCode.NOT_FOUND, "no such greeting")


def health_check(request, context):
    return bytes([0x08, 0x01])


health = grpc.method_handlers_generic_handler(
    "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(health_check)}
)
handlers = grpc.method_handlers_generic_handler(
    "test.Greeter",
    {
        "Say": grpc.unary_unary_rpc_method_handler(say),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    },
)
server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
server.add_generic_rpc_handlers((handlers, health))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(f"listening on 127.0.0.1:{port}", flush=True)
server.wait_for_termination()
