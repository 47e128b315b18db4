"""A gRPC client (the `grpcio` library) calling /test.Greeter through the gateway, over
cleartext HTTP/2 with prior knowledge.

usage: grpc_client.py PORT MODE [N]
  say N     N calls of Say, one after another; prints each outcome: "OK" or the status code's
            name, space separated (e.g. "OK OK OK RESOURCE_EXHAUSTED")
  count N   one Count call streaming N messages; prints "OK <messages received>"
  fail      one Fail call; prints "<code name> <details>"
  details   one Say call; prints "<code name>|<details>|<retry-after trailer or ->"
"""
import sys

import grpc

port, mode = sys.argv[1], sys.argv[2]
channel = grpc.insecure_channel(f"127.0.0.1:{port}")
say = channel.unary_unary("/test.Greeter/Say")
count = channel.unary_stream("/test.Greeter/Count")
fail = channel.unary_unary("/test.Greeter/Fail")


def outcome(call):
    try:
        reply = call()
        return "OK", reply, None
    except grpc.RpcError as error:
        return error.code().name, error.details(), error


if mode == "say":
    codes = []
    for index in range(int(sys.argv[3])):
        code, reply, _ = outcome(lambda: say(b"caller %d" % index, timeout=5))
        if code == "OK" and reply != b"hello caller %d" % index:
            code = "WRONG_REPLY"
        codes.append(code)
    print(" ".join(codes))
elif mode == "count":
    received = list(count(sys.argv[3].encode(), timeout=5))
    print("OK", len(received))
elif mode == "fail":
    code, details, _ = outcome(lambda: fail(b"x", timeout=5))
    print(code, details)
elif mode == "details":
    code, details, error = outcome(lambda: say(b"x", timeout=5))
    trailers = dict(error.trailing_metadata() or ()) if error else {}
    initial = dict(error.initial_metadata() or ()) if error else {}
    retry = trailers.get("retry-after") or initial.get("retry-after") or "-"
    print(f"{code}|{details}|{retry}")
else:
    raise SystemExit(f"unknown mode {mode}")
