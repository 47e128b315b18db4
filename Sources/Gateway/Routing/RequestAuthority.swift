import NIOHTTP1

/// The authority a request is routed by and forwarded with (RFC 9112, 3.2): the target's own in
/// absolute form, else the one `Host` header. A request that could name two hosts, or a host
/// that is no host, is refused: the upstream must never read a different host than the router.
enum RequestAuthority {
    enum Problem: Error, Equatable {
        case missingHost
        case repeatedHost
        case invalidHost
    }

    /// The authority to route by and forward, or nil when the request has none (HTTP/1.0
    /// without `Host`). An HTTP/2 request's `:authority` arrives here as its `Host`.
    /// - Parameter targetAuthority: the authority of an absolute-form target.
    static func resolve(_ fields: RequestFields, version: HTTPVersion, targetAuthority: Substring?) -> Result<String?, Problem> {
        if fields.hostCount > 1 { return .failure(.repeatedHost) }
        if let host = fields.receivedHost, !host.isValid { return .failure(.invalidHost) }
        if let targetAuthority {
            guard isValid(targetAuthority) else { return .failure(.invalidHost) }
            return .success(String(targetAuthority))
        }
        // Only HTTP/1.0 may name no host; an HTTP/2 request without `:authority` or `Host` is
        // refused as an HTTP/1.1 one without `Host` is (as nginx does).
        if fields.host == nil && version != .http1_0 { return .failure(.missingHost) }
        return .success(fields.host)
    }

    /// `host [":" port]`: a registered name (letters, digits, `-._~`, sub-delims, no %-escapes;
    /// labels between single dots, perhaps one trailing dot), an IPv4 address in its plain
    /// spelling (`HostSpelling`), or an IPv6 address in brackets; a port of up to five digits,
    /// at most 65535 (a larger one names no TCP port, and upstreams that parse the authority,
    /// such as Python's `urllib`, fail on it).
    static func isValid(_ authority: Substring) -> Bool {
        authority.utf8.withContiguousStorageIfAvailable { isValid(UnsafeRawBufferPointer($0)) }
            ?? Array(authority.utf8).withUnsafeBytes(isValid)
    }

    static func isValid(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard !bytes.isEmpty else { return false }
        var index = 0
        if bytes[0] == UInt8(ascii: "[") {
            index = 1
            while index < bytes.count && bytes[index] != UInt8(ascii: "]") {
                guard isIPv6LiteralByte(bytes[index]) else { return false }
                index += 1
            }
            guard index > 1, index < bytes.count, isIPv6(UnsafeRawBufferPointer(rebasing: bytes[1..<index])) else { return false }
            index += 1
        } else {
            // No empty label (`a..b`, `.a`, `a..`): hosts that name nothing, which nginx refuses
            // too, and which an upstream that trims or splits its dots would read as another
            // host than the router matched. One trailing dot is a fully qualified name.
            var labelStart = true
            while index < bytes.count && bytes[index] != UInt8(ascii: ":") {
                let byte = bytes[index]
                guard isRegisteredNameByte(byte) else { return false }
                if byte == UInt8(ascii: ".") {
                    guard !labelStart else { return false }
                    labelStart = true
                } else {
                    labelStart = false
                }
                index += 1
            }
            guard index > 0, !HostSpelling.isAmbiguousIPv4(UnsafeRawBufferPointer(rebasing: bytes[0..<index])) else { return false }
        }
        guard index < bytes.count else { return true }
        guard bytes[index] == UInt8(ascii: ":"), bytes.count - index - 1 <= 5 else { return false }
        let port = UnsafeRawBufferPointer(rebasing: bytes[(index + 1)...])
        // An empty port (`host:`) is allowed (RFC 3986, 3.2.3).
        return port.isEmpty || (RequestBodyFraming.decimal(port).map { $0 <= 65535 } ?? false)
    }

    /// Whether the text between an authority's brackets is an IPv6 address (brackets hold no
    /// IPv4 one, RFC 3986 3.2.2).
    private static func isIPv6(_ literal: UnsafeRawBufferPointer) -> Bool {
        literal.contains(UInt8(ascii: ":")) && IPAddress(String(decoding: literal, as: UTF8.self)) != nil
    }

    private static func isRegisteredNameByte(_ byte: UInt8) -> Bool {
        ASCIIByteSet.registeredName.contains(byte)
    }

    private static func isIPv6LiteralByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "f"), UInt8(ascii: "A")...UInt8(ascii: "F"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".")
        }
    }
}
