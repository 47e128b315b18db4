/// The byte-level rules an HTTP/2 request's fields must follow (RFC 9113, 8.2 and 8.3) before
/// they become an HTTP/1.1 request to the upstream.
///
/// They matter beyond conformance: a CR, LF or NUL in a value, or a space in a pseudo-header
/// that becomes the request line, would let a client write a second request, or headers of its
/// choosing, into the upstream connection (HTTP/2 to HTTP/1.1 request smuggling).
package enum HTTP2FieldSyntax {
    /// A regular field name: one or more token characters, none upper-case (RFC 9113, 8.2.1).
    package static func isFieldName(_ name: UnsafeRawBufferPointer) -> Bool {
        !name.isEmpty && name.allSatisfy { isTokenByte($0) && lowerCased($0) == $0 }
    }

    /// Calls `body` with a String's UTF-8 bytes, contiguous (copied once if they are not).
    package static func withBytes<Result>(of text: String, _ body: (UnsafeRawBufferPointer) -> Result) -> Result {
        text.utf8.withContiguousStorageIfAvailable { body(UnsafeRawBufferPointer($0)) } ?? Array(text.utf8).withUnsafeBytes(body)
    }

    /// HTTP/1 connection management, which HTTP/2 forbids in either direction (RFC 9113,
    /// 8.2.2), in any case.
    package static func isConnectionSpecific(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 7: return matches(name, "upgrade")
        case 10: return matches(name, "connection") || matches(name, "keep-alive")
        case 16: return matches(name, "proxy-connection")
        case 17: return matches(name, "transfer-encoding")
        default: return false
        }
    }

    /// Whether `bytes` are `literal` (lower case) in any case.
    package static func matches(_ bytes: UnsafeRawBufferPointer, _ literal: StaticString) -> Bool {
        literal.withUTF8Buffer { literal in
            guard bytes.count == literal.count else { return false }
            guard let base = bytes.baseAddress, let other = literal.baseAddress.map(UnsafeRawPointer.init) else { return true }
            var index = 0
            while index + 8 <= bytes.count {
                let word = base.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                if lowerCased(word: word) != other.loadUnaligned(fromByteOffset: index, as: UInt64.self) { return false }
                index += 8
            }
            while index < bytes.count {
                if lowerCased(bytes[index]) != literal[index] { return false }
                index += 1
            }
            return true
        }
    }

    package static func lowerCased(_ byte: UInt8) -> UInt8 {
        byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte | 0x20 : byte
    }

    /// Eight bytes lower-cased at once: each byte from A to Z gains 0x20, every other byte is
    /// left as it is (bytes from 0x80 up included).
    @inline(__always)
    package static func lowerCased(word: UInt64) -> UInt64 {
        let highBits: UInt64 = 0x8080_8080_8080_8080
        let sevenBits = word & ~highBits
        // Per byte, with no carry into the next: the high bit says "above Z", then "at least A".
        let aboveZ = sevenBits &+ 0x2525_2525_2525_2525
        let atLeastA = sevenBits &+ 0x3F3F_3F3F_3F3F_3F3F
        let upperCase = atLeastA & ~aboveZ & ~word & highBits
        return word | (upperCase >> 2)
    }

    /// A method: one or more token characters (RFC 9110, 9.1).
    package static func isMethod(_ value: String) -> Bool {
        withBytes(of: value) { !$0.isEmpty && $0.allSatisfy(isTokenByte) }
    }

    /// A regular field value: no NUL, LF or CR anywhere (RFC 9113, 8.2.1). Spaces, tabs and
    /// bytes above 0x7F are allowed inside a value.
    package static func isFieldValue(_ value: UnsafeRawBufferPointer) -> Bool {
        !value.contains { $0 == 0x00 || $0 == 0x0A || $0 == 0x0D }
    }

    /// A regular field's value without the spaces and tabs around it. RFC 9113 (8.2.1) calls a
    /// value with them malformed; they are dropped instead, as the HTTP/1.1 side drops the
    /// optional whitespace around a value. Kept, they made a value one thing to a limiter keyed
    /// on it (`k` and `k ` two budgets) and another to an HTTP/1.1 upstream, which drops them.
    package static func trimmingWhitespace(_ value: String) -> String {
        let bytes = value.utf8
        guard let first = bytes.first, let last = bytes.last, isSpaceOrTab(first) || isSpaceOrTab(last) else { return value }
        guard let start = bytes.firstIndex(where: { !isSpaceOrTab($0) }), let end = bytes.lastIndex(where: { !isSpaceOrTab($0) }) else {
            return ""
        }
        return String(decoding: bytes[start...end], as: UTF8.self)
    }

    private static func isSpaceOrTab(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// A pseudo-header value: visible ASCII only. Each one's grammar (method token, scheme,
    /// host[:port], request target) excludes anything else, and :path and :method are written
    /// into the HTTP/1.1 request line, where a space would split it and where the gateway's own
    /// HTTP/1.1 side refuses any other byte too (a path's other characters are percent-encoded,
    /// as browsers send them).
    package static func isPseudoHeaderValue(_ value: String) -> Bool {
        withBytes(of: value) { $0.allSatisfy { $0 > 0x20 && $0 < 0x7F } }
    }

    /// tchar (RFC 9110, 5.6.2): "!#$%&'*+-.^_`|~", digits and letters.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x21, 0x23...0x27, 0x2A, 0x2B, 0x2D, 0x2E, 0x30...0x39, 0x41...0x5A, 0x5E...0x7A, 0x7C, 0x7E:
            return true
        default:
            return false
        }
    }
}
