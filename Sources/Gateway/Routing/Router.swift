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

    /// Whether some route's prefix holds an upper-case letter: only then can a path without one
    /// match another route when letter case is ignored.
    private let prefixesHaveUpperCase: Bool

    /// Whether some route matches on methods: only then can the method a request names for
    /// itself route it elsewhere.
    public let someRouteNamesMethods: Bool

    public init(routes: [GatewayConfig.Route]) {
        conditions = routes.map {
            Condition(pathPrefix: $0.pathPrefix, methods: $0.methods.map(Self.withHEADForGET), host: $0.host.map(Self.hostWithoutPort))
        }
        prefixesHaveUpperCase = routes.contains { $0.pathPrefix.utf8.contains(where: Self.isUpperCase) }
        someRouteNamesMethods = routes.contains { $0.methods != nil }
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
        firstMatch(path: path, method: method(), host: host) { $0.hasPrefix($1) }
    }

    /// Whether the route `path` matches depends on letter case: ignoring case, another route (or
    /// one where there was none, or none where there was one) would match. Upstreams differ here
    /// (Express and ASP.NET Core route paths without regard to case, Starlette, Django and
    /// Spring with it), so such a path cannot be routed the way every upstream reads it.
    /// - Parameter matched: what `match` returned for the same request.
    public func dependsOnCase(path: String, method: @autoclosure () -> String, host: String?, matched: Int?) -> Bool {
        guard prefixesHaveUpperCase || Self.hasUpperCase(path) else { return false }
        return firstMatch(path: path, method: method(), host: host, Self.hasPrefixIgnoringCase) != matched
    }

    /// Whether one of `methods`, which a request names for itself (MethodOverride), matches
    /// another route (or one where there was none), in the path's letter case or another.
    /// Each method is tried once however often it is named: a list in a field or a query may
    /// name the same one thousands of times.
    /// - Parameter matched: what `match` returned for the request's own method.
    public func dependsOnNamedMethods(_ methods: [String], path: String, host: String?, matched: Int?) -> Bool {
        // Without a route that names methods, every method is routed as the request's own is,
        // in either letter case (whose check for the own method is `dependsOnCase`'s).
        guard someRouteNamesMethods else { return false }
        var tried = Set<String>()
        return methods.contains { method in
            guard tried.insert(method).inserted else { return false }
            return match(path: path, method: method, host: host) != matched || dependsOnCase(path: path, method: method, host: host, matched: matched)
        }
    }

    private func firstMatch(
        path: String, method: @autoclosure () -> String, host: String?,
        _ hasPrefix: (String, String) -> Bool
    ) -> Int? {
        // Normalised only if some route asks for a host: most configurations never pay for it.
        var bareHost: String??
        for index in conditions.indices {
            guard hasPrefix(path, conditions[index].pathPrefix) else { continue }
            if let methods = conditions[index].methods, !methods.contains(method()) { continue }
            if let wanted = conditions[index].host {
                if bareHost == nil { bareHost = .some(host.map(Self.hostWithoutPort)) }
                if wanted != bareHost! { continue }
            }
            return index
        }
        return nil
    }

    private static func hasUpperCase(_ text: String) -> Bool {
        text.utf8.withContiguousStorageIfAvailable { $0.contains(where: isUpperCase) } ?? text.utf8.contains(where: isUpperCase)
    }

    private static func isUpperCase(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    /// `hasPrefix` with ASCII letters compared without their case.
    private static func hasPrefixIgnoringCase(_ text: String, _ prefix: String) -> Bool {
        var rest = text.utf8.makeIterator()
        for byte in prefix.utf8 {
            guard let other = rest.next() else { return false }
            if byte != other && !(isLetter(byte) && byte ^ 0x20 == other) { return false }
        }
        return true
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        isUpperCase(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
    }

    static func hostWithoutPort(_ host: String) -> String {
        var host = Substring(host)
        if host.hasPrefix("["), let close = host.firstIndex(of: "]") {
            // `[0::1]` and `[::1]` are one address to every upstream: matched by one spelling.
            let literal = host[host.index(after: host.startIndex)..<close]
            return "[" + (IPAddress(literal)?.description ?? literal.lowercased()) + "]"
        } else if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            host = host[..<colon]
        }
        // `example.com.` is the fully qualified spelling of `example.com`.
        if host.hasSuffix("."), !host.hasPrefix("[") { host = host.dropLast() }
        return host.lowercased()
    }
}
