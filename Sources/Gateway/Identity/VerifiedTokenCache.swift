/// One event loop's tokens already verified: a client sends the same token with every request,
/// and a signature check (tens of microseconds for ES256) need not be paid each time. Used only
/// on its loop, so it needs no lock.
final class VerifiedTokenCache {
    private struct Entry {
        let claims: TokenClaims
        /// Held, not just identified: a reload's new verifier (new keys) never finds the old
        /// one's entries.
        let verifier: TokenVerifier
        let validUntil: Double
    }

    /// Entries kept; the table is emptied when full (simple, and a refill costs one check per
    /// active client).
    static let capacity = 4096
    /// Larger tokens are verified every time, so the cache stays within a few MiB per loop.
    static let maxCachedTokenBytes = 2048
    /// A token without `exp` is verified again after this long.
    static let maxReuseSeconds: Double = 60

    private var entries: [String: Entry] = [:]

    var count: Int { entries.count }

    func claims(_ token: String, verifier: TokenVerifier, now: Double) -> TokenClaims? {
        if let entry = entries[token], entry.verifier === verifier, now < entry.validUntil {
            return entry.claims
        }
        guard let claims = verifier.verifiedClaims(token, now: now) else { return nil }
        guard token.utf8.count <= Self.maxCachedTokenBytes else { return claims }
        if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        var validUntil = now + Self.maxReuseSeconds
        if let expiry = claims.values["exp"]?.seconds {
            validUntil = min(validUntil, expiry + TokenVerifier.leewaySeconds)
        }
        entries[token] = Entry(claims: claims, verifier: verifier, validUntil: validUntil)
        return claims
    }
}
