#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The addresses a host name resolves to (getaddrinfo): a blocking call, made only at start (a
/// configuration is being built) and on NIO's blocking-work threads, never on an event loop.
enum HostResolver {
    /// Every distinct address, in a stable order; empty when the name does not resolve.
    static func addresses(of host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        #if canImport(Glibc)
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #else
        hints.ai_socktype = SOCK_STREAM
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return [] }
        defer { freeaddrinfo(first) }
        var addresses: Set<String> = []
        var node: UnsafeMutablePointer<addrinfo>? = first
        while let info = node {
            if let address = info.pointee.ai_addr {
                var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
                if getnameinfo(address, info.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                    addresses.insert(String(cString: text))
                }
            }
            node = info.pointee.ai_next
        }
        return addresses.sorted()
    }

    /// The configured targets with every name replaced by one target per address it resolves
    /// to (same port and weight); a name that resolves to nothing stays as it is, resolved again
    /// at each connect, so a lookup that fails never empties an upstream.
    static func expand(
        _ targets: [GatewayConfig.UpstreamTarget],
        resolve: (String) -> [String] = addresses(of:)
    ) -> [GatewayConfig.UpstreamTarget] {
        targets.flatMap { target -> [GatewayConfig.UpstreamTarget] in
            guard target.isName else { return [target] }
            let addresses = resolve(target.host)
            guard !addresses.isEmpty else { return [target] }
            return addresses.map { address in
                var resolved = target
                resolved.resolvedAddress = address
                return resolved
            }
        }
    }
}
