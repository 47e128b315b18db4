/// Fields in which a client speaks for a proxy: where the request came from, how it arrived, or
/// which path it asked for. An upstream behind the gateway trusts its forwarding fields (that is
/// what it is configured to do), so each of these would be read there as what the gateway saw.
///
/// - `X-Real-IP` is the gateway's own (the client address it resolved, the one per-IP limits
///   count): a client's never goes on.
/// - `X-Original-URL` and `X-Rewrite-URL` never go on: older Symfony and Zend upstreams route by
///   them instead of the request line, a path the router never matched.
/// - `Forwarded`, every `X-Forwarded-*` but `-For`, the scheme claims Rack and IIS read
///   (`Front-End-Https`, `X-Url-Scheme`), and the client-address fields frameworks and CDNs
///   use (`Client-IP`, which Rails reads, `X-Client-IP`, `True-Client-IP`, `CF-Connecting-IP`,
///   `Fastly-Client-IP`, `X-Cluster-Client-IP`) go on only from a trusted proxy.
///   (`X-Forwarded-For` is appended to, as nginx's `$proxy_add_x_forwarded_for`; `-Proto` and
///   `-Host` are replaced.)
///
/// Names are compared in any case and with `_` read as `-`, as CGI-style upstreams read them.
enum ClientClaims {
    /// Whether the client field `name` is a claim that does not go on.
    /// - Parameter fromTrustedProxy: whether the connection's peer is a trusted proxy.
    static func isWithheld(_ name: UnsafeRawBufferPointer, fromTrustedProxy: Bool) -> Bool {
        switch name.count {
        case 9:
            if ASCIIText.namesSameField(name, "x-real-ip") { return true }
            if ASCIIText.namesSameField(name, "forwarded") { return !fromTrustedProxy }
        case 13 where ASCIIText.namesSameField(name, "x-rewrite-url"): return true
        case 14 where ASCIIText.namesSameField(name, "x-original-url"): return true
        default: break
        }
        guard !fromTrustedProxy else { return false }
        switch name.count {
        case 9: return ASCIIText.namesSameField(name, "client-ip")
        case 11: return ASCIIText.namesSameField(name, "x-client-ip")
        case 12: return ASCIIText.namesSameField(name, "x-url-scheme")
        case 14: return ASCIIText.namesSameField(name, "true-client-ip") || isForwardedField(name)
        case 15: return ASCIIText.namesSameField(name, "front-end-https") || isForwardedField(name)
        case 16:
            return ASCIIText.namesSameField(name, "cf-connecting-ip") || ASCIIText.namesSameField(name, "fastly-client-ip")
                || isForwardedField(name)
        case 19: return ASCIIText.namesSameField(name, "x-cluster-client-ip") || isForwardedField(name)
        default: return isForwardedField(name)
        }
    }

    /// `X-Forwarded-` and more, but not `X-Forwarded-For` itself.
    private static func isForwardedField(_ name: UnsafeRawBufferPointer) -> Bool {
        guard name.count > 12, ASCIIText.namesSameField(UnsafeRawBufferPointer(rebasing: name[..<12]), "x-forwarded-") else {
            return false
        }
        return !ASCIIText.equals(name, lowercased: "x-forwarded-for")
    }
}
