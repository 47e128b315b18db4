/// The path a route is matched on and forwarded with.
///
/// It is normalised first (percent-encoded unreserved characters decoded, `.` and `..` segments
/// resolved, repeated slashes folded) so that `/public/../auth/login` or `/%61uth/login` cannot
/// reach the upstream's `/auth/login` through a route with a looser limit. A path holding an
/// encoded slash or backslash (`%2F`, `%5C`), a raw backslash or an encoded NUL is refused:
/// frameworks disagree on whether `/auth%2Flogin` is `/auth/login` (Starlette decodes it
/// before routing), so no route could be matched the way every upstream reads it. The upstream
/// receives the same normalised path it was matched on; the query string passes untouched.
///
/// A segment's parameters (`;` to the next `/`) are left out when matching, and dot segments
/// resolved again without them: servlet containers (Tomcat, Jetty) strip them before routing, so
/// that `/auth;x/login` and `/public/..;/auth/login` are `/auth/login` to them. Other upstreams
/// read the `;` as part of the segment, and get the path as forwarded, in a route at least as
/// strict as the one they would have matched without the parameters.
public struct RequestPath: Sendable, Equatable {
    public let path: String
    /// `path` without segment parameters, when it has any.
    private let pathWithoutParameters: String?
    /// Including the leading `?`, or empty.
    public let query: Substring
    /// The authority of an absolute-form target (`GET http://host:port/path`), which wins over
    /// `Host`.
    public let authority: Substring?

    /// The target as the client sent it, when normalising changed nothing in it.
    private let original: String?

    public init?(uri: String) {
        // Most targets are already normal: one scan of their bytes says so.
        if let pathLength = uri.withUTF8Bytes(Self.normalPathLength) {
            let queryStart = uri.utf8.index(uri.startIndex, offsetBy: pathLength)
            path = pathLength == uri.utf8.count ? uri : String(uri[..<queryStart])
            query = uri[queryStart...]
            authority = nil
            original = uri
            pathWithoutParameters = nil
            return
        }
        // Scanned as UTF-8 bytes: Character-wise searches (grapheme breaking) cost more than
        // the rest of routing.
        let slash = UInt8(ascii: "/")
        var target = Substring(uri)
        var authority: Substring?
        // Absolute form (`GET http://host/path`), as proxies may receive.
        if target.utf8.first != slash {
            for scheme in ["http://", "https://"] where Self.hasPrefixIgnoringCase(target, scheme) {
                let afterScheme = target.utf8.index(target.startIndex, offsetBy: scheme.utf8.count)
                let rest = target[afterScheme...]
                let pathStart = rest.utf8.firstIndex { $0 == slash || $0 == UInt8(ascii: "?") } ?? rest.endIndex
                authority = rest[..<pathStart]
                target = rest[pathStart...]
                if target.utf8.first != slash { target = Substring("/" + String(target)) }
                break
            }
        }
        guard target.utf8.first == slash else { return nil }
        guard !target.utf8.contains(UInt8(ascii: "\\")) else { return nil }
        // A fragment never belongs on the wire: dropped if a client sends one, from the first
        // `#` on (a `?` after it is the fragment's, not a query's). Left in a query, it was
        // forwarded, and an upstream that reads past it (uvicorn's h11 server does) read
        // parameters the identity's query reader, which stops there, never saw.
        let fragment = target.utf8.firstIndex(of: UInt8(ascii: "#"))
        if let fragment { target = target[..<fragment] }
        let queryStart = target.utf8.firstIndex(of: UInt8(ascii: "?")) ?? target.endIndex
        guard let decoded = Self.decodingUnreserved(target[..<queryStart]) else { return nil }
        path = Self.removingDotSegments(decoded)
        pathWithoutParameters = path.utf8.contains(UInt8(ascii: ";")) ? Self.removingDotSegments(Self.removingParameters(path)) : nil
        query = target[queryStart...]
        self.authority = authority
        let unchanged = authority == nil && fragment == nil
            && path.utf8.elementsEqual(target.utf8[..<queryStart])
        original = unchanged ? uri : nil
    }

    /// The length of the path of an origin-form target that normalising would leave as it is
    /// (no escape, dot segment, repeated slash, backslash or fragment); nil for any other target.
    private static func normalPathLength(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard bytes.first == UInt8(ascii: "/") else { return nil }
        var previousWasSlash = false
        var index = 0
        while index < bytes.count {
            switch bytes[index] {
            case UInt8(ascii: "?"):
                // The query passes untouched, but a backslash anywhere refuses the target, and
                // a fragment is cut off by the full reading.
                return bytes[index...].contains { $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "#") } ? nil : index
            case UInt8(ascii: "%"), UInt8(ascii: "\\"), UInt8(ascii: "#"), UInt8(ascii: ";"):
                return nil
            case UInt8(ascii: "."), UInt8(ascii: "/"):
                if previousWasSlash { return nil }
            default:
                break
            }
            previousWasSlash = bytes[index] == UInt8(ascii: "/")
            index += 1
        }
        return bytes.count
    }

    private static func hasPrefixIgnoringCase(_ text: Substring, _ prefix: String) -> Bool {
        text.utf8.count >= prefix.utf8.count && String(text.prefix(prefix.count)).asciiCaseInsensitiveEquals(prefix)
    }

    /// The path routes are matched on: `path` without its segments' parameters.
    public var routingPath: String { pathWithoutParameters ?? path }

    /// Every segment's `;` and what follows it in the segment, gone.
    private static func removingParameters(_ path: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(path.utf8.count)
        var inParameters = false
        for byte in path.utf8 {
            if byte == UInt8(ascii: "/") {
                inParameters = false
            } else if byte == UInt8(ascii: ";") {
                inParameters = true
            }
            if !inParameters { out.append(byte) }
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The target to forward: the client's own text when it was already normal.
    public var uri: String { original ?? (query.isEmpty ? path : path + query) }

    private static func decodingUnreserved(_ raw: Substring) -> String? {
        guard raw.utf8.contains(UInt8(ascii: "%")) else { return String(raw) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.utf8.count)
        let bytes = Array(raw.utf8)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = ASCIIText.hexValue(bytes[index + 1]), let low = ASCIIText.hexValue(bytes[index + 2])
                else { return nil }
                let value = high << 4 | low
                // An encoded slash, backslash or NUL: see the type's documentation.
                if value == UInt8(ascii: "/") || value == UInt8(ascii: "\\") || value == 0 { return nil }
                if isUnreserved(value) {
                    out.append(value)
                } else {
                    out.append(contentsOf: [byte, upperHex(bytes[index + 1]), upperHex(bytes[index + 2])])
                }
                index += 3
            } else {
                out.append(byte)
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func removingDotSegments(_ path: String) -> String {
        guard Self.mayNeedDotSegmentRemoval(path) else { return path }
        var segments: [Substring] = []
        let parts = path.split(separator: "/", omittingEmptySubsequences: true)
        for part in parts {
            switch part {
            case ".": continue
            case "..": _ = segments.popLast()
            default: segments.append(part)
            }
        }
        let trailingSlash = path.hasSuffix("/") || path.hasSuffix("/.") || path.hasSuffix("/..")
        let joined = "/" + segments.joined(separator: "/")
        return trailingSlash && !segments.isEmpty ? joined + "/" : joined
    }

    /// True when the path holds "/." or "//" (a byte scan: no Foundation on the hot path).
    private static func mayNeedDotSegmentRemoval(_ path: String) -> Bool {
        var previousWasSlash = false
        for byte in path.utf8 {
            if previousWasSlash && (byte == UInt8(ascii: ".") || byte == UInt8(ascii: "/")) { return true }
            previousWasSlash = byte == UInt8(ascii: "/")
        }
        return false
    }

    private static func upperHex(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) ? byte - 32 : byte
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }
}
