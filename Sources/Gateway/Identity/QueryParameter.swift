/// Reads one parameter of a request target's query, as `application/x-www-form-urlencoded`
/// names it: `&`-separated `name=value` pairs, `+` for space, percent escapes decoded.
enum QueryParameter {
    /// The value of `name` in a query, when it is there once (a name without `=` has an empty
    /// value, as a form parser with blank values kept reads it).
    /// - Parameter query: RequestPath's `query` (from its `?`, or empty): the one the upstream
    ///   gets, so that no second reading of the target (where a fragment ends, which `?` begins
    ///   the query) can differ from it.
    static func only(_ name: String, inQuery query: Substring) -> SingleValue {
        let found = values(inQuery: query) { $0 == name }
        switch found.count {
        case 0: return .none
        case 1: return .one(found[0])
        default: return .repeated
        }
    }

    /// The values of every parameter whose (decoded) name `nameMatches`, in order.
    static func values(inQuery query: Substring, where nameMatches: (String) -> Bool) -> [String] {
        var values: [String] = []
        for pair in query.utf8.dropFirst().split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: true) {
            let equals = pair.firstIndex(of: UInt8(ascii: "="))
            guard nameMatches(decode(equals.map { pair[..<$0] } ?? pair[...])) else { continue }
            values.append(equals.map { decode(pair[pair.index(after: $0)...]) } ?? "")
        }
        return values
    }

    /// Percent-decodes bytes; an escape that is not two hex digits stays as written, and
    /// decoded bytes that are not UTF-8 are repaired rather than dropped.
    static func decode(_ bytes: Substring.UTF8View.SubSequence) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.count)
        var index = bytes.startIndex
        while index < bytes.endIndex {
            let byte = bytes[index]
            if byte == UInt8(ascii: "+") {
                output.append(UInt8(ascii: " "))
            } else if byte == UInt8(ascii: "%"),
                let high = bytes.index(index, offsetBy: 1, limitedBy: bytes.endIndex), high < bytes.endIndex,
                let low = bytes.index(index, offsetBy: 2, limitedBy: bytes.endIndex), low < bytes.endIndex,
                let h = ASCIIText.hexValue(bytes[high]), let l = ASCIIText.hexValue(bytes[low])
            {
                output.append(h << 4 | l)
                index = low
            } else {
                output.append(byte)
            }
            index = bytes.index(after: index)
        }
        return String(decoding: output, as: UTF8.self)
    }
}
