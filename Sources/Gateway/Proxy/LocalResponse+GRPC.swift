import NIOHTTP1

/// A gRPC client reads an answer from its trailers, never from an HTTP status or a JSON body: a
/// gRPC request (HTTP/2, `content-type: application/grpc...`) the gateway answers itself gets
/// HTTP 200 with `content-type: application/grpc`, the answer's own headers (the rate-limit
/// headers, `retry-after`), and trailers carrying `grpc-status` and `grpc-message`.
extension LocalResponse {
    static func isGRPC(_ request: ClientRequest) -> Bool {
        guard request.version.major == 2, let type = request.headers.values(named: "content-type").first else { return false }
        return type.utf8.starts(with: "application/grpc".utf8)
    }

    /// The gRPC status code (the `grpc-status` trailer) that says what the HTTP status says.
    var grpcStatus: Int {
        switch status.code {
        case 429, 431: return 8  // RESOURCE_EXHAUSTED
        case 502, 503: return 14  // UNAVAILABLE
        case 504: return 4  // DEADLINE_EXCEEDED
        case 401: return 16  // UNAUTHENTICATED
        case 400: return 3  // INVALID_ARGUMENT
        case 404, 405, 501: return 12  // UNIMPLEMENTED
        default: return 2  // UNKNOWN
        }
    }

    func grpcHead() -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/grpc")
        for (name, value) in self.headers { headers.add(name: name, value: value) }
        return HTTPResponseHead(version: .http2, status: .ok, headers: headers)
    }

    func grpcTrailers() -> HTTPHeaders {
        HTTPHeaders([("grpc-status", String(grpcStatus)), ("grpc-message", Self.percentEncoded(message))])
    }

    /// gRPC's percent-encoding of `grpc-message`: printable ASCII stays, except `%`.
    static func percentEncoded(_ text: String) -> String {
        var encoded = ""
        for byte in text.utf8 {
            if (0x20...0x7E).contains(byte) && byte != UInt8(ascii: "%") {
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                encoded += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return encoded
    }
}
