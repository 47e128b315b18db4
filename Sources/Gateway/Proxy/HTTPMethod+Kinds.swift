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

    /// RFC 9110, 9.2.2: sending it twice does what sending it once does, so a request that got
    /// no answer may be sent again.
    var isIdempotent: Bool {
        switch self {
        case .GET, .HEAD, .OPTIONS, .PUT, .DELETE, .TRACE: return true
        default: return false
        }
    }
}
