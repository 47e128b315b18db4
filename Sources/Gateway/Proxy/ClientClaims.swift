/// Fields in which a client speaks for a proxy: where the request came from or how it arrived.
/// An upstream behind the gateway trusts its forwarding fields (that is what it is configured to
/// do), so a client's own would be read there as what the gateway saw. `Forwarded`, every
/// `X-Forwarded-*` but `-For`, the scheme claims Rack and IIS read (`Front-End-Https`,
/// `X-Url-Scheme`), and the client-address fields frameworks and CDNs use (`Client-IP`, which
/// Rails reads, `X-Client-IP`, `True-Client-IP`, `CF-Connecting-IP`, `Fastly-Client-IP`,
/// `X-Cluster-Client-IP`) go on only from a trusted proxy. (The fields the gateway sets, and
/// those that never go on, are UpstreamRequest's: `X-Forwarded-For` appended to, as nginx's
/// `$proxy_add_x_forwarded_for`, `-Proto`, `-Host` and `X-Real-IP` replaced.)
///
/// Names are compared in any case and with `_` read as `-`, as CGI-style upstreams read them.
enum ClientClaims {
    /// Whether the client field `name` is a claim that does not go on.
    /// - Parameter fromTrustedProxy: whether the connection's peer is a trusted proxy.
    static func isWithheld(_ name: UnsafeRawBufferPointer, fromTrustedProxy: Bool) -> Bool {
        guard !fromTrustedProxy else { return false }
        switch name.count {
        case 9: return ASCIIText.namesSameField(name, "forwarded") || ASCIIText.namesSameField(name, "client-ip")
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
