import NIOHPACK
import NIOHTTP1

/// How the fields of a response head go into an HTTP/2 header block.
///
/// Runs for every field of every response, so names are told apart by length first and compared
/// with at most a few literals; a name is lower-cased into a new string only when an upstream
/// sent it with capitals and it is not one of the gateway's own rate-limit headers.
enum HTTP2ResponseFields {
    /// Appends `headers` lower-cased, without the HTTP/1 connection-level fields HTTP/2 forbids,
    /// indexed in the HPACK dynamic table only when their values usually repeat.
    static func append(_ headers: HTTPHeaders, to block: inout HPACKHeaders) {
        for (name, value) in headers {
            let lowerName = lowerCased(name)
            switch kind(of: lowerName) {
            case .connectionSpecific: continue
            case .repeating: block.add(name: lowerName, value: value, indexing: .indexable)
            case .varying: block.add(name: lowerName, value: value, indexing: .nonIndexable)
            }
        }
    }

    enum Kind {
        /// HTTP/1 connection management: never sent on HTTP/2.
        case connectionSpecific
        /// Mostly the same value response after response (content type, the limit's policy):
        /// worth one of the dynamic table's few entries, which later responses send as one byte.
        case repeating
        /// Lengths, remaining counts, reset times, dates, ids: indexed, they would only churn the
        /// table and lengthen every later search of it.
        case varying
    }

    /// The kind of a lower-case field name.
    static func kind(of name: String) -> Kind {
        switch name.utf8.count {
        case 4: return name == "vary" ? .repeating : .varying
        case 6: return name == "server" ? .repeating : .varying
        case 7: return name == "upgrade" ? .connectionSpecific : .varying
        case 10: return name == "connection" || name == "keep-alive" ? .connectionSpecific : .varying
        case 12: return name == "content-type" ? .repeating : .varying
        case 13: return name == "cache-control" ? .repeating : .varying
        case 16:
            if name == "proxy-connection" { return .connectionSpecific }
            return name == "ratelimit-policy" || name == "content-encoding" ? .repeating : .varying
        case 17:
            if name == "transfer-encoding" { return .connectionSpecific }
            return name == "x-ratelimit-limit" ? .repeating : .varying
        case 22: return name == "x-content-type-options" ? .repeating : .varying
        case 25: return name == "strict-transport-security" ? .repeating : .varying
        case 27: return name == "access-control-allow-origin" ? .repeating : .varying
        default: return .varying
        }
    }

    /// `name` lower-cased; the gateway's own mixed-case rate-limit names map to literals.
    static func lowerCased(_ name: String) -> String {
        let bytes = name.utf8
        guard bytes.contains(where: { $0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z") }) else { return name }
        switch bytes.count {
        case 9 where name == "RateLimit": return "ratelimit"
        case 11 where name == "Retry-After": return "retry-after"
        case 16 where name == "RateLimit-Policy": return "ratelimit-policy"
        case 17 where name == "X-RateLimit-Limit": return "x-ratelimit-limit"
        case 17 where name == "X-RateLimit-Reset": return "x-ratelimit-reset"
        case 21 where name == "X-RateLimit-Remaining": return "x-ratelimit-remaining"
        default: return name.lowercased()
        }
    }
}
