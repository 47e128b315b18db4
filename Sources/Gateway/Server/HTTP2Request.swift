import NIOHPACK
import NIOHTTP1

/// An HTTP/2 request's header block as the HTTP/1-shaped head ProxyHandler and the HTTP/1.1
/// upstream speak.
enum HTTP2Request {
    /// A request header block without the pseudo-headers every request must carry.
    struct Malformed: Error, CustomStringConvertible {
        let missing: String
        var description: String { "HTTP/2 request without \(missing)" }
    }

    /// The request as HTTP/1 sees it: `:authority` becomes `Host` (unless the client sent one),
    /// and a body without a length is marked chunked for the upstream hop.
    static func head(_ block: HPACKHeaders, endStream: Bool) throws -> HTTPRequestHead {
        var method: String?
        var path: String?
        var authority: String?
        var hasHost = false
        var hasContentLength = false
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count)
        for (name, value, _) in block {
            if name.utf8.first == UInt8(ascii: ":") {
                switch name {
                case ":method": method = value
                case ":path": path = value
                case ":authority": authority = value
                default: break
                }
                continue
            }
            if name == "host" { hasHost = true }
            if name == "content-length" { hasContentLength = true }
            fields.append((name, value))
        }
        guard let method else { throw Malformed(missing: ":method") }
        guard let path else { throw Malformed(missing: ":path") }
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
        return HTTPRequestHead(
            version: HTTPVersion(major: 2, minor: 0),
            method: httpMethod,
            uri: path,
            headers: HTTPHeaders(fields)
        )
    }
}

extension HTTPHeaders {
    /// The regular fields of an HTTP/2 header block (the pseudo-headers dropped).
    init(regularHeadersOf block: HPACKHeaders) {
        var fields: [(String, String)] = []
        fields.reserveCapacity(block.count)
        for (name, value, _) in block where name.utf8.first != UInt8(ascii: ":") {
            fields.append((name, value))
        }
        self.init(fields)
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
