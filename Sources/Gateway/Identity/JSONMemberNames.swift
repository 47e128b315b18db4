/// Reads the member names at the top level of a JSON object, to answer one question: is each
/// there only once?
///
/// RFC 7519 (section 4) lets a JWT parser refuse a repeated claim name or take the last of its
/// values. Foundation's decoder takes the first; the services behind a gateway mostly take the
/// last (Python's json, JavaScript's JSON.parse, Go's encoding/json). A signed token naming `sub`
/// twice would be counted as one user and served as another, so such a token is refused. Names
/// are compared as decoded: `"s\u0075b"` is `sub`.
enum JSONMemberNames {
    /// Whether `json` is an object whose top-level names are all different (false for anything
    /// that is not an object).
    static func areUnique(_ json: [UInt8]) -> Bool {
        var reader = Reader(bytes: json)
        var seen = Set<[UInt8]>()
        reader.skipSpace()
        guard reader.take(UInt8(ascii: "{")) else { return false }
        reader.skipSpace()
        if reader.take(UInt8(ascii: "}")) { return reader.isAtEndAfterSpace }
        while true {
            reader.skipSpace()
            guard let name = reader.string(), seen.insert(name).inserted else { return false }
            reader.skipSpace()
            guard reader.take(UInt8(ascii: ":")), reader.skipValue() else { return false }
            reader.skipSpace()
            if reader.take(UInt8(ascii: ",")) { continue }
            return reader.take(UInt8(ascii: "}")) && reader.isAtEndAfterSpace
        }
    }

    private struct Reader {
        let bytes: [UInt8]
        var index = 0

        init(bytes: [UInt8]) { self.bytes = bytes }

        var isAtEndAfterSpace: Bool {
            mutating get {
                skipSpace()
                return index == bytes.count
            }
        }

        mutating func skipSpace() {
            while index < bytes.count, Self.isSpace(bytes[index]) { index += 1 }
        }

        /// JSON's whitespace (RFC 8259, 2).
        private static func isSpace(_ byte: UInt8) -> Bool {
            byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D
        }

        mutating func take(_ byte: UInt8) -> Bool {
            guard index < bytes.count, bytes[index] == byte else { return false }
            index += 1
            return true
        }

        /// A string at the reader, its escapes decoded to UTF-8 (a lone surrogate as the three
        /// bytes of its code unit, so that two different ones never compare equal).
        mutating func string() -> [UInt8]? {
            guard take(UInt8(ascii: "\"")) else { return nil }
            var decoded: [UInt8] = []
            while index < bytes.count {
                let byte = bytes[index]
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return decoded
                case UInt8(ascii: "\\"):
                    guard index < bytes.count else { return nil }
                    let escape = bytes[index]
                    index += 1
                    switch escape {
                    case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): decoded.append(escape)
                    case UInt8(ascii: "b"): decoded.append(0x08)
                    case UInt8(ascii: "f"): decoded.append(0x0C)
                    case UInt8(ascii: "n"): decoded.append(0x0A)
                    case UInt8(ascii: "r"): decoded.append(0x0D)
                    case UInt8(ascii: "t"): decoded.append(0x09)
                    case UInt8(ascii: "u"):
                        guard let unit = codeUnit() else { return nil }
                        appendCodePoint(of: unit, to: &decoded)
                    default: return nil
                    }
                default:
                    decoded.append(byte)
                }
            }
            return nil
        }

        /// A `\uXXXX` escape's unit (its `\u` read), joined with the low surrogate that follows a
        /// high one.
        private mutating func codeUnit() -> UInt32? {
            guard let unit = hex4() else { return nil }
            guard (0xD800...0xDBFF).contains(unit), index + 6 <= bytes.count,
                bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u")
            else { return unit }
            let mark = index
            index += 2
            guard let low = hex4(), (0xDC00...0xDFFF).contains(low) else {
                index = mark
                return unit
            }
            return 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
        }

        private mutating func hex4() -> UInt32? {
            guard index + 4 <= bytes.count else { return nil }
            var value: UInt32 = 0
            for byte in bytes[index..<index + 4] {
                guard let digit = ASCIIText.hexValue(byte) else { return nil }
                value = value << 4 | UInt32(digit)
            }
            index += 4
            return value
        }

        /// UTF-8's encoding of a code point (surrogates included, as the bytes of their unit).
        private func appendCodePoint(of value: UInt32, to out: inout [UInt8]) {
            switch value {
            case ..<0x80:
                out.append(UInt8(value))
            case ..<0x800:
                out += [UInt8(0xC0 | value >> 6), UInt8(0x80 | value & 0x3F)]
            case ..<0x10000:
                out += [UInt8(0xE0 | value >> 12), UInt8(0x80 | value >> 6 & 0x3F), UInt8(0x80 | value & 0x3F)]
            default:
                out += [UInt8(0xF0 | value >> 18), UInt8(0x80 | value >> 12 & 0x3F), UInt8(0x80 | value >> 6 & 0x3F), UInt8(0x80 | value & 0x3F)]
            }
        }

        /// Steps over one value: a string, an object or array (whole, strings in it read as
        /// strings so that their brackets do not count), or a literal or number.
        mutating func skipValue() -> Bool {
            skipSpace()
            guard index < bytes.count else { return false }
            switch bytes[index] {
            case UInt8(ascii: "\""):
                return string() != nil
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while index < bytes.count {
                    switch bytes[index] {
                    case UInt8(ascii: "\""):
                        guard string() != nil else { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                    default:
                        break
                    }
                    index += 1
                    if depth == 0 { return true }
                }
                return false
            default:
                let start = index
                while index < bytes.count, !Self.isSpace(bytes[index]),
                    bytes[index] != UInt8(ascii: ","), bytes[index] != UInt8(ascii: "}"), bytes[index] != UInt8(ascii: "]")
                {
                    index += 1
                }
                return index > start
            }
        }
    }
}
