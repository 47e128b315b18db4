/// The spellings of a host that name the same address to an upstream but not to a router that
/// compares names as sent. An IPv4 address has many (WHATWG's URL parser, Node's `new URL` for
/// one, reads `127.1`, `0x7f.0.0.1`, `017700000001` and `2130706433` all as 127.0.0.1, a part
/// with a leading zero as octal), so only its one plain spelling is taken. (An IPv6 literal's
/// spellings every parser reads alike: the router matches it by `IPAddress`'s one.)
enum HostSpelling {
    /// Whether `name` (a registered name or IPv4 address, without port, perhaps with one
    /// trailing dot) is one a WHATWG parser reads as an IPv4 address (its last label a number:
    /// digits, or `0x` and hex digits) in any spelling but four decimal parts from 0 to 255
    /// without leading zeros.
    static func isAmbiguousIPv4(_ name: UnsafeRawBufferPointer) -> Bool {
        var end = name.count
        if end > 0 && name[end - 1] == dot { end -= 1 }
        var lastStart = end
        while lastStart > 0 && name[lastStart - 1] != dot { lastStart -= 1 }
        guard isNumber(UnsafeRawBufferPointer(rebasing: name[lastStart..<end])) else { return false }
        return !isPlainIPv4(UnsafeRawBufferPointer(rebasing: name[0..<end]))
    }

    /// Digits, or `0x` (any case) and hex digits: what WHATWG's parser takes for a number.
    private static func isNumber(_ label: UnsafeRawBufferPointer) -> Bool {
        guard !label.isEmpty else { return false }
        if label.count >= 2, label[0] == zero, label[1] | 0x20 == UInt8(ascii: "x") {
            return label.dropFirst(2).allSatisfy(isHexDigit)
        }
        return label.allSatisfy(isDigit)
    }

    /// `a.b.c.d`, each part 0 to 255 in decimal, without a leading zero: what `inet_pton` (and so
    /// `IPAddress`) takes for IPv4, read in place, as this runs for every request whose host is an
    /// address and `IPAddress` allocates.
    private static func isPlainIPv4(_ text: UnsafeRawBufferPointer) -> Bool {
        guard let base = text.baseAddress else { return false }
        var dots = 0
        var value = 0
        var digits = 0
        for offset in 0..<text.count {
            let byte = base.load(fromByteOffset: offset, as: UInt8.self)
            if byte == dot {
                guard digits > 0 else { return false }
                dots &+= 1
                value = 0
                digits = 0
                continue
            }
            let digit = byte &- zero
            guard digit <= 9, digits == 0 || value > 0 else { return false }
            value = value &* 10 &+ Int(digit)
            digits &+= 1
            guard value <= 255 else { return false }
        }
        return digits > 0 && dots == 3
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (zero...UInt8(ascii: "9")).contains(byte) }

    private static func isHexDigit(_ byte: UInt8) -> Bool {
        isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte | 0x20)
    }

    private static let dot = UInt8(ascii: ".")
    private static let zero = UInt8(ascii: "0")
}
