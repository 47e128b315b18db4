/// A set of ASCII bytes as two 64-bit masks: a membership test is a shift and a mask, with no
/// table to load (a global array costs a lazy-initialisation check and a bounds check per byte,
/// and these tests run on every byte of a head).
struct ASCIIByteSet {
    /// Bit n set: byte n is a member (bytes 0 to 63).
    let low: UInt64
    /// Bit n set: byte 64 + n is a member (bytes 64 to 127).
    let high: UInt64

    @inline(__always)
    func contains(_ byte: UInt8) -> Bool {
        if byte < 64 { return low >> byte & 1 == 1 }
        if byte < 128 { return high >> (byte - 64) & 1 == 1 }
        return false
    }

    /// The set of the given bytes (for tests, which check the constants below against it).
    init(_ members: some Sequence<UInt8>) {
        var low: UInt64 = 0
        var high: UInt64 = 0
        for byte in members where byte < 128 {
            if byte < 64 { low |= 1 << byte } else { high |= 1 << (byte - 64) }
        }
        self.low = low
        self.high = high
    }

    init(low: UInt64, high: UInt64) {
        self.low = low
        self.high = high
    }

    /// `tchar` (RFC 9110, 5.6.2): letters, digits and ``!#$%&'*+-.^_`|~``.
    static let token = ASCIIByteSet(low: 0x03FF_6CFA_0000_0000, high: 0x57FF_FFFF_C7FF_FFFE)

    /// A registered name's bytes in an authority (RFC 3986, 3.2.2): letters, digits, `-._~` and
    /// the sub-delims `!$&'()*+,;=`. Not `%`: RFC 3986 allows escapes in a name, but a WHATWG URL
    /// parser (Node's `new URL`, for one) decodes them, so `admin%2eexample` would name, to such an
    /// upstream, the `admin.example` that the router, matching names as sent, did not see.
    static let registeredName = ASCIIByteSet(low: 0x2BFF_7FD2_0000_0000, high: 0x47FF_FFFE_87FF_FFFE)
}
