import Foundation
import NIOHPACK
import NIOHTTP1

/// An HTTP/2 request's header blocks as the HTTP/1-shaped parts a proxy and an HTTP/1.1 upstream
/// speak, checked on the way. An extended CONNECT for WebSocket (RFC 8441) becomes the HTTP/1.1
/// handshake it stands for.
///
/// The checks are made in the one pass that converts a block (HPACK-decoded by the connection);
/// responses, which the gateway assembles from heads NIO's HTTP/1.1 parser already checked, are
/// not checked again.
package enum HTTP2Request {
    /// A request header block HTTP/2 calls malformed (RFC 9113, 8.1.1): the stream is reset.
    package struct Malformed: Error, CustomStringConvertible {
        package let reason: String
        package var description: String { "malformed HTTP/2 request: \(reason)" }
    }

    /// The one protocol an extended CONNECT may name.
    static let webSocketProtocol = "websocket"

    /// A `Sec-WebSocket-Key` for the handshake an extended CONNECT becomes: 16 random bytes in
    /// base64 (RFC 6455, 4.1). The upstream's accept value answers it and is not passed on
    /// (RFC 8441 has none).
    static func newWebSocketKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return Data((0..<16).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
    }

    /// The request as HTTP/1 sees it (see `request`).
    package static func head(_ block: HPACKHeaders, endStream: Bool) throws -> HTTPRequestHead {
        try request(block, endStream: endStream).head
    }

    /// The request as HTTP/1 sees it: `:authority` becomes `Host` (unless the client sent one),
    /// the `cookie` fields a client split (RFC 9113, 8.2.3) are one again, and a body without a
    /// length is marked chunked for the upstream hop.
    ///
    /// An extended CONNECT for `websocket` (RFC 8441) becomes the HTTP/1.1 handshake it stands
    /// for, a `GET` of its path asking to upgrade, with a key of the gateway's own (an HTTP/2
    /// client sends none): `opensTunnel` is then true, and the stream's DATA is the tunnel's.
    package static func request(_ block: HPACKHeaders, endStream: Bool) throws -> (head: HTTPRequestHead, opensTunnel: Bool) {
        var method: String?
        var scheme: String?
        var path: String?
        var authority: String?
        var tunnelProtocol: String?
        var host: String?
        var hasContentLength = false
        var cookieIndex: Int?
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count)
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                guard fields.isEmpty else { throw Malformed(reason: "\(name) after a regular field") }
                guard HTTP2FieldSyntax.isPseudoHeaderValue(value) else {
                    throw Malformed(reason: "a space or control byte in \(name)")
                }
                switch name {
                case ":method": try setOnce(&method, value, name)
                case ":scheme": try setOnce(&scheme, value, name)
                case ":path": try setOnce(&path, value, name)
                case ":authority": try setOnce(&authority, value, name)
                case ":protocol": try setOnce(&tunnelProtocol, value, name)
                default: throw Malformed(reason: "the pseudo-header \(name), which requests do not have")
                }
                continue
            }
            let value = HTTP2FieldSyntax.trimmingWhitespace(value)
            try checkRegularField(name, value)
            if name == "host" { host = value }
            if name == "content-length" {
                // Two, even agreeing, would both reach the upstream, which may refuse the request
                // (as our HTTP/1.1 side does) and count as a failing target for it.
                guard !hasContentLength else { throw Malformed(reason: "content-length twice") }
                hasContentLength = true
            }
            if name == "cookie" {
                // Browsers send each cookie as a field of its own, for HPACK to index; an
                // HTTP/1.1 server reads one Cookie line, often only the first of several.
                if let cookieIndex {
                    fields[cookieIndex].1 += "; " + value
                    continue
                }
                cookieIndex = fields.count
            }
            fields.append((name, value))
        }
        guard let method else { throw Malformed(reason: "no :method") }
        // RFC 9113, 8.3.1: `:path` holds a path and query, never a whole URI, and a `Host` that
        // names another entity than `:authority` makes the request malformed: either would let
        // the request be routed by one authority and served by another.
        if let path, !path.isEmpty, !(path.utf8.first == UInt8(ascii: "/") || path == "*") {
            throw Malformed(reason: ":path is not an absolute path")
        }
        if let host, let authority, host.lowercased() != authority.lowercased() {
            throw Malformed(reason: "Host and :authority name different hosts")
        }
        let hasHost = host != nil
        if let tunnelProtocol {
            guard method == "CONNECT" else { throw Malformed(reason: ":protocol on a \(method)") }
            guard tunnelProtocol == webSocketProtocol else { throw Malformed(reason: "CONNECT for \(tunnelProtocol)") }
            guard scheme != nil, let path, !path.isEmpty, let authority else {
                throw Malformed(reason: "an extended CONNECT without :scheme, :path and :authority")
            }
            // A CONNECT has no content (RFC 9110, 9.3.6): its DATA is the tunnel's. A length
            // would reach the upstream's handshake, which would read that many tunnel bytes as
            // a body.
            guard !hasContentLength else { throw Malformed(reason: "content-length on an extended CONNECT") }
            // The handshake's key is the gateway's (RFC 8441, 5: HTTP/2 uses none); a client's
            // own would make two.
            fields.removeAll { $0.0 == "sec-websocket-key" }
            if !hasHost { fields.insert(("host", authority), at: 0) }
            fields.append(("connection", "upgrade"))
            fields.append(("upgrade", webSocketProtocol))
            fields.append(("sec-websocket-key", newWebSocketKey()))
            let head = HTTPRequestHead(version: HTTPVersion(major: 2, minor: 0), method: .GET, uri: path, headers: HTTPHeaders(fields))
            return (head, true)
        }
        if method == "CONNECT" {
            return (try plainConnect(authority: authority, scheme: scheme, path: path, fields: &fields, hasHost: hasHost), false)
        }
        guard HTTP2FieldSyntax.isMethod(method) else { throw Malformed(reason: "the method is not a token") }
        guard scheme != nil else { throw Malformed(reason: "no :scheme") }
        guard let path, !path.isEmpty else { throw Malformed(reason: "no :path") }
        if !hasHost, let authority { fields.insert(("host", authority), at: 0) }
        let httpMethod = HTTPMethod(rawValue: method)
        if !hasContentLength {
            if !endStream {
                // Whatever the method: a body the upstream could not delimit would be read by
                // it as the start of the next request (request smuggling).
                fields.append(("transfer-encoding", "chunked"))
            } else if httpMethod.announcesBody {
                // Some servers refuse a POST without a length (411), even an empty one.
                fields.append(("content-length", "0"))
            }
        }
        let head = HTTPRequestHead(
            version: HTTPVersion(major: 2, minor: 0),
            method: httpMethod,
            uri: path,
            headers: HTTPHeaders(fields)
        )
        return (head, false)
    }

    /// A CONNECT without `:protocol` (RFC 9113, 8.5): only `:authority`, no `:scheme` or `:path`.
    /// Well formed, so it is not reset as malformed: it reaches the proxy as a CONNECT of that
    /// authority, which the proxy answers 405 as it answers one over HTTP/1.1. It never becomes
    /// a tunnel, and the target it names is never a path a route could match.
    private static func plainConnect(
        authority: String?, scheme: String?, path: String?, fields: inout [(String, String)], hasHost: Bool
    ) throws -> HTTPRequestHead {
        guard let authority, !authority.isEmpty else { throw Malformed(reason: "a CONNECT without :authority") }
        guard scheme == nil, path == nil else { throw Malformed(reason: "a CONNECT with :scheme or :path") }
        if !hasHost { fields.insert(("host", authority), at: 0) }
        return HTTPRequestHead(version: HTTPVersion(major: 2, minor: 0), method: .CONNECT, uri: authority, headers: HTTPHeaders(fields))
    }

    /// A request's trailers: regular fields only.
    package static func trailers(_ block: HPACKHeaders) throws -> HTTPHeaders {
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count)
        for (name, value, _) in block {
            guard name.utf8.first != UInt8(ascii: ":") else { throw Malformed(reason: "\(name) in trailers") }
            let value = HTTP2FieldSyntax.trimmingWhitespace(value)
            try checkRegularField(name, value)
            fields.append((name, value))
        }
        return HTTPHeaders(fields)
    }

    /// The body length a request declares, which its DATA frames must add up to (RFC 9113,
    /// 8.1.1): what the HTTP/1.1 upstream is told it will get. One field, digits only.
    package static func declaredLength(_ head: HTTPRequestHead) throws -> Int? {
        var length: Int?
        for (name, value) in head.headers where name.utf8.count == 14 && name == "content-length" {
            guard !value.isEmpty, value.utf8.count <= 18, value.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
                let parsed = Int(value), length == nil
            else { throw Malformed(reason: "content-length \(value)") }
            length = parsed
        }
        return length
    }

    private static func setOnce(_ slot: inout String?, _ value: String, _ name: String) throws {
        guard slot == nil else { throw Malformed(reason: "\(name) twice") }
        slot = value
    }

    /// RFC 9113, 8.2: a lower-case token name, a value without NUL, CR or LF, none of the
    /// HTTP/1 connection-level fields, and TE only as "trailers".
    private static func checkRegularField(_ name: String, _ value: String) throws {
        let problem: String? = HTTP2FieldSyntax.withBytes(of: name) { nameBytes in
            HTTP2FieldSyntax.withBytes(of: value) { valueBytes in
                if !HTTP2FieldSyntax.isFieldName(nameBytes) { return "an invalid field name" }
                if !HTTP2FieldSyntax.isFieldValue(valueBytes) { return "CR, LF or NUL in \(name)" }
                if HTTP2FieldSyntax.isConnectionSpecific(nameBytes) { return "the connection-specific field \(name)" }
                if nameBytes.count == 2, name == "te", value != "trailers" { return "TE other than trailers" }
                return nil
            }
        }
        if let problem { throw Malformed(reason: problem) }
    }
}

extension HTTPMethod {
    /// Methods whose requests normally carry a body: an empty one is sent with a zero length.
    fileprivate var announcesBody: Bool {
        switch self {
        case .GET, .HEAD, .DELETE, .CONNECT, .TRACE, .OPTIONS: return false
        default: return true
        }
    }
}
