/// First-match routing in file order: path prefix, then the optional method set and host.
public struct Router: Sendable {
    /// What each route matches on, in file order: only these, so that a request's walk over
    /// them copies (and retains) none of a route's other Strings.
    private let conditions: [Condition]

    private struct Condition: Sendable {
        let pathPrefix: String
        let methods: Set<String>?
        let host: String?
    }

    public init(routes: [GatewayConfig.Route]) {
        conditions = routes.map {
            Condition(pathPrefix: $0.pathPrefix, methods: $0.methods.map(Self.withHEADForGET), host: $0.host.map(Self.hostWithoutPort))
        }
    }

    /// A route naming GET matches HEAD too (as nginx's `limit_except GET` allows HEAD): upstreams
    /// answer a HEAD by running the GET handler (Starlette, FastAPI, Flask, Django do), so a
    /// HEAD routed elsewhere would cost the upstream a whole GET that the GET route's limiters
    /// never counted.
    private static func withHEADForGET(_ methods: Set<String>) -> Set<String> {
        methods.contains("GET") ? methods.union(["HEAD"]) : methods
    }

    /// The index of the first route whose conditions hold, or nil.
    /// - Parameters:
    ///   - method: asked for only when a route names methods.
    ///   - host: the request's authority, as sent (port, case and a trailing dot are ignored).
    public func match(path: String, method: @autoclosure () -> String, host: String?) -> Int? {
        // Normalised only if some route asks for a host: most configurations never pay for it.
        var bareHost: String??
        for index in conditions.indices {
            guard path.hasPrefix(conditions[index].pathPrefix) else { continue }
            if let methods = conditions[index].methods, !methods.contains(method()) { continue }
            if let wanted = conditions[index].host {
                if bareHost == nil { bareHost = .some(host.map(Self.hostWithoutPort)) }
                if wanted != bareHost! { continue }
            }
            return index
        }
        return nil
    }

    static func hostWithoutPort(_ host: String) -> String {
        var host = Substring(host)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            // `[0::1]` and `[::1]` are one address to every upstream: matched by one spelling.
            let literal = host[host.index(after: host.startIndex)..<close]
            return "[" + (HostSpelling.canonicalIPv6(literal) ?? literal.lowercased()) + "]"
        } else if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            host = host[..<colon]
        }
        // `example.com.` is the fully qualified spelling of `example.com`.
        if host.hasSuffix("."), !host.hasPrefix("[") { host = host.dropLast() }
        return host.lowercased()
    }
}
