import NIOHTTP1

extension HTTPMethod {
    /// Matched as a case: `==` on HTTPMethod compares the raw values, two Strings built per
    /// comparison, and these are asked on every request and response.
    var isHEAD: Bool {
        if case .HEAD = self { return true }
        return false
    }

    var isGET: Bool {
        if case .GET = self { return true }
        return false
    }

    /// Whether the method has a lower-case letter. Methods are case-sensitive, but some
    /// upstreams fold them to upper case: to one of those, `post` on the route the gateway matched
    /// as "not POST" (and limited as such) would be a POST. nginx refuses such methods too.
    var hasLowercaseLetter: Bool {
        guard case .RAW(let value) = self else { return false }
        return value.utf8.contains { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }
    }

    /// RFC 9110, 9.2.2: sending it twice does what sending it once does, so a request that got
    /// no answer may be sent again.
    var isIdempotent: Bool {
        switch self {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE: return true
        default: return false
        }
    }
}
