/// Reads one parameter of a request target's query, as `application/x-www-form-urlencoded`
/// names it: `&`-separated `name=value` pairs, `+` for space, percent escapes decoded.
enum QueryParameter {
    /// The value of `name` in a query, when it is there once (a name without `=` has an empty
    /// value, as a form parser with blank values kept reads it).
    ///
    /// Names are compared as the bytes they decode to, without a String made for each, so that
    /// a query of many pairs costs no allocation per pair; and so compared, as upstreams' form
    /// parsers compare them, by code point (String's `==` would hold a Kelvin sign, U+212A,
    /// equal to `K`). Only the value found is decoded, and the walk stops at a second match.
    /// - Parameter query: RequestPath's `query` (from its `?`, or empty): the one the upstream
    ///   gets, so that no second reading of the target (where a fragment ends, which `?` begins
    ///   the query) can differ from it.
    static func only(_ name: String, inQuery query: Substring) -> SingleValue {
        var found = SingleValue.none
        var name = name
        name.withUTF8 { name in
            forEachPair(inQuery: query) { pairName, value in
                guard decodes(pairName, to: name) else { return true }
                guard case .none = found else {
                    found = .repeated
                    return false
                }
                found = .one(value.map(decode) ?? "")
                return true
            }
        }
        return found
    }

    /// Hands over each non-empty `&`-separated pair of `query` (its leading `?` skipped): its
    /// name, and its value when it has an `=`, in order, until `body` returns false.
    private static func forEachPair(
        inQuery query: Substring,
        _ body: (_ name: Substring.UTF8View.SubSequence, _ value: Substring.UTF8View.SubSequence?) -> Bool
    ) {
        let bytes = query.utf8.dropFirst()
        var start = bytes.startIndex
        while start < bytes.endIndex {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "&")) ?? bytes.endIndex
            let pair = bytes[start..<end]
            if !pair.isEmpty {
                let equals = pair.firstIndex(of: UInt8(ascii: "="))
                let name = equals.map { pair[..<$0] } ?? pair
                guard body(name, equals.map { pair[pair.index(after: $0)...] }) else { return }
            }
            start = end == bytes.endIndex ? end : bytes.index(after: end)
        }
    }

    /// The values of every parameter whose name `nameMatches`, in order.
    /// - Parameter nameMatches: handed a name as it is written (`forEachDecodedByte` decodes it).
    static func values(inQuery query: Substring, whereName nameMatches: (Substring.UTF8View.SubSequence) -> Bool) -> [String] {
        var values: [String] = []
        forEachPair(inQuery: query) { name, value in
            if nameMatches(name) { values.append(value.map(decode) ?? "") }
            return true
        }
        return values
    }

    /// Percent-decodes bytes; an escape that is not two hex digits stays as written, and
    /// decoded bytes that are not UTF-8 are repaired rather than dropped.
    static func decode(_ bytes: Substring.UTF8View.SubSequence) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        forEachDecodedByte(of: bytes) { byte in
            output.append(byte)
            return true
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// Whether `bytes`, percent-decoded as `decode` reads them, are exactly `expected`.
    private static func decodes(_ bytes: Substring.UTF8View.SubSequence, to expected: UnsafeBufferPointer<UInt8>) -> Bool {
        var matched = 0
        let whole = forEachDecodedByte(of: bytes) { byte in
            guard matched < expected.count, expected[matched] == byte else { return false }
            matched += 1
            return true
        }
        return whole && matched == expected.count
    }

    /// Hands over the bytes `bytes` decode to (`+` a space, `%XX` its byte, anything else as
    /// written), in order, until `body` returns false.
    /// - Returns: whether every byte was handed over.
    @discardableResult
    static func forEachDecodedByte(of bytes: Substring.UTF8View.SubSequence, _ body: (UInt8) -> Bool) -> Bool {
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            let decoded: UInt8
            if byte == UInt8(ascii: "+") {
                decoded = UInt8(ascii: " ")
            } else if byte == UInt8(ascii: "%"),
                let high = bytes.index(index, offsetBy: 1, limitedBy: bytes.endIndex), high < bytes.endIndex,
                let low = bytes.index(index, offsetBy: 2, limitedBy: bytes.endIndex), low < bytes.endIndex,
                let h = ASCIIText.hexValue(bytes[high]), let l = ASCIIText.hexValue(bytes[low])
            {
                decoded = h << 4 | l
                index = low
            } else {
                decoded = byte
            }
            guard body(decoded) else { return false }
            index = bytes.index(after: index)
        }
        return true
    }
}
