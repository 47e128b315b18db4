#if canImport(Glibc)
import Glibc
#endif

/// ASCII comparisons of header names and list values, on the bytes of the Strings as stored.
///
/// Header names, `Connection` options and transfer codings are ASCII tokens compared without
/// regard to case (RFC 9110, 5.1 and 7.6.1). These run several times per field on every request
/// and response, so they read the Strings' contiguous UTF-8 directly: no iterator, no lower-cased
/// copy, no split into arrays.
enum ASCIIText {
    @inline(__always)
    static func lowered(_ byte: UInt8) -> UInt8 {
        byte &- UInt8(ascii: "A") < 26 ? byte | 0x20 : byte
    }

    /// `word` with each of its bytes from `A` to `Z` lowered, the others (from 0x80 up too) as
    /// they are: eight bytes at once.
    @inline(__always)
    static func loweredWord(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highBits: UInt64 = 0x8080_8080_8080_8080
        // Each byte below 0x80, so that adding up to 0x3F carries into no other byte.
        let low = word & ~highBits
        let fromA = low &+ ones &* (0x80 - 0x41)
        let pastZ = low &+ ones &* (0x80 - 0x5B)
        let upperCase = fromA & ~pastZ & ~word & highBits
        return word | upperCase >> 2
    }

    /// Whether `bytes` starts with `prefix` (all lower case), in any case. Compared eight bytes
    /// at a time (the last eight overlapping the ones before): a name of 14 bytes is two words.
    static func hasPrefix(_ bytes: UnsafeRawBufferPointer, lowercased prefix: UnsafeRawBufferPointer) -> Bool {
        guard bytes.count >= prefix.count else { return false }
        if prefix.count >= 8, let base = bytes.baseAddress, let prefixBase = prefix.baseAddress {
            var index = 0
            while true {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if loweredWord(word) != prefixBase.loadUnaligned(fromByteOffset: index, as: UInt64.self) { return false }
                if index == prefix.count - 8 { return true }
                index = min(index + 8, prefix.count - 8)
            }
        }
        var index = 0
        while index < prefix.count {
            if lowered(bytes[index]) != prefix[index] { return false }
            index += 1
        }
        return true
    }

    /// Whether `bytes` starts with `prefix` (all lower case), in any case.
    @inline(__always)
    static func hasPrefix(_ bytes: UnsafeRawBufferPointer, lowercased prefix: StaticString) -> Bool {
        prefix.withUTF8Buffer { hasPrefix(bytes, lowercased: UnsafeRawBufferPointer($0)) }
    }

    /// Whether `bytes` are `other` (all lower case), in any case.
    static func equals(_ bytes: UnsafeRawBufferPointer, lowercased other: UnsafeRawBufferPointer) -> Bool {
        bytes.count == other.count && hasPrefix(bytes, lowercased: other)
    }

    @inline(__always)
    static func equals(_ bytes: UnsafeRawBufferPointer, lowercased other: StaticString) -> Bool {
        other.withUTF8Buffer { equals(bytes, lowercased: UnsafeRawBufferPointer($0)) }
    }

    /// Whether `bytes` and `other` are equal, in any case (both may hold upper case).
    static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ other: UnsafeRawBufferPointer) -> Bool {
        equal(bytes, other, comparing: lowered)
    }

    /// Whether two field names are one to an upstream that reads `_` as `-` (CGI's `HTTP_*`
    /// variables, and the WSGI servers that follow it): equal in any case, `_` and `-` alike.
    static func namesSameField(_ bytes: UnsafeRawBufferPointer, _ other: UnsafeRawBufferPointer) -> Bool {
        equal(bytes, other) { byte in byte == UInt8(ascii: "_") ? UInt8(ascii: "-") : lowered(byte) }
    }

    static func namesSameField(_ bytes: UnsafeRawBufferPointer, _ other: StaticString) -> Bool {
        other.withUTF8Buffer { namesSameField(bytes, UnsafeRawBufferPointer($0)) }
    }

    /// Whether `bytes` and `other` are the same length and equal byte for byte once each byte
    /// is mapped by `key`.
    @inline(__always)
    private static func equal(_ bytes: UnsafeRawBufferPointer, _ other: UnsafeRawBufferPointer, comparing key: (UInt8) -> UInt8) -> Bool {
        guard bytes.count == other.count else { return false }
        var index = 0
        while index < bytes.count {
            if key(bytes[index]) != key(other[index]) { return false }
            index += 1
        }
        return true
    }

    /// Whether a comma-separated list names `token` (all lower case), in any case.
    static func lists(_ list: UnsafeRawBufferPointer, _ token: UnsafeRawBufferPointer) -> Bool {
        var found = false
        forEachListElement(list) { element in
            if equals(element, lowercased: token) { found = true }
        }
        return found
    }

    static func lists(_ list: UnsafeRawBufferPointer, _ token: StaticString) -> Bool {
        token.withUTF8Buffer { lists(list, UnsafeRawBufferPointer($0)) }
    }

    /// Calls `body` with each element of a comma-separated list (RFC 9110, 5.6.1), without the
    /// spaces and tabs around it; empty elements are skipped.
    static func forEachListElement(_ bytes: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> Void) {
        var start = 0
        while start < bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: ",") { end += 1 }
            var first = start
            var last = end
            while first < last && isSpaceOrTab(bytes[first]) { first += 1 }
            while last > first && isSpaceOrTab(bytes[last - 1]) { last -= 1 }
            if first < last { body(UnsafeRawBufferPointer(rebasing: bytes[first..<last])) }
            start = end + 1
        }
    }

    /// A hexadecimal digit's value, in either case.
    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }

    @inline(__always)
    static func isSpaceOrTab(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }
}

extension String {
    /// Calls `body` with the String's UTF-8 bytes, contiguous (copied once if they are not).
    @inline(__always)
    func withUTF8Bytes<Result>(_ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        if let result = utf8.withContiguousStorageIfAvailable({ body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        return Array(utf8).withUnsafeBytes(body)
    }

    /// Whether the String's UTF-8 is exactly `bytes`. Not `==`, which takes canonically
    /// equivalent spellings as equal (a Kelvin sign and `K`): what was checked or made from some
    /// bytes is reused only for the same bytes.
    func hasUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard utf8.count == bytes.count else { return false }
        return withUTF8Bytes { mine in
            guard let mine = mine.baseAddress, let other = bytes.baseAddress else { return bytes.isEmpty }
            return memcmp(mine, other, bytes.count) == 0
        }
    }

    /// ASCII case-insensitive equality with an all-lower-case `other`, without allocating.
    func asciiCaseInsensitiveEquals(_ other: String) -> Bool {
        utf8.count == other.utf8.count
            && withUTF8Bytes { mine in other.withUTF8Bytes { ASCIIText.equals(mine, lowercased: $0) } }
    }

    /// Whether this comma-separated list value names `token` (all lower case), in any case.
    func listsToken(_ token: String) -> Bool {
        withUTF8Bytes { bytes in token.withUTF8Bytes { ASCIIText.lists(bytes, $0) } }
    }
}
