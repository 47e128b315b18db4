/// First-match routing in file order: path prefix, then the optional method set and host.
public struct Router: Sendable {
    public let routes: [GatewayConfig.Route]

    public init(routes: [GatewayConfig.Route]) {
        self.routes = routes
    }

    /// The index of the first route whose conditions hold, or nil.
    /// - Parameters:
    ///   - method: asked for only when a route names methods.
    ///   - host: the request's authority, as sent (port, case and a trailing dot are ignored).
    public func match(path: String, method: @autoclosure () -> String, host: String?) -> Int? {
        // Normalised only if some route asks for a host: most configurations never pay for it.
        var bareHost: String??
        for (index, route) in routes.enumerated() {
            guard path.hasPrefix(route.pathPrefix) else { continue }
            if let methods = route.methods, !methods.contains(method()) { continue }
            if let wanted = route.host {
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
            host = host[...close]
        } else if let colon = host.lastIndex(of: ":"), host.firstIndex(of: ":") == colon {
            host = host[..<colon]
        }
        // `example.com.` is the fully qualified spelling of `example.com`.
        if host.hasSuffix("."), !host.hasPrefix("[") { host = host.dropLast() }
        return host.lowercased()
    }
}
