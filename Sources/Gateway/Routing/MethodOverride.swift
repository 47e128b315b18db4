/// Where a request may name another method for itself. Frameworks let a client that can only
/// send GET and POST ask for another method: Rails (Rack::MethodOverride), Symfony and Laravel,
/// ASP.NET Core, Express's method-override and gorilla's handler read it from
/// `X-HTTP-Method-Override` (OData and Google APIs from `X-HTTP-Method`, some from
/// `X-Method-Override`), and Symfony, Laravel and gorilla from a `_method` query parameter
/// too. Behind such an upstream, `POST /items/1` with `X-HTTP-Method-Override: DELETE` is a
/// DELETE; routed as a POST it would pass only the POST route's limiters.
///
/// Field names are compared in any case and with `_` read as `-`; values upper-cased as those
/// frameworks do (Unicode's mapping, as Express's and Rails', so `ſ` reads as `S`), each element
/// of a comma-separated list too.
enum MethodOverride {
    /// Whether the field `name` is one in which a client may name another method.
    static func isOverrideField(_ name: UnsafeRawBufferPointer) -> Bool {
        switch name.count {
        case 13: return ASCIIText.namesSameField(name, "x-http-method")
        case 17: return ASCIIText.namesSameField(name, "x-method-override")
        case 22: return ASCIIText.namesSameField(name, "x-http-method-override")
        default: return false
        }
    }

    /// The methods a request names for itself, in its fields and its query, as an upstream that
    /// honours them would read them.
    /// - Parameters:
    ///   - fields: the request's fields (asked only when `namedInFields`).
    ///   - namedInFields: whether some field is an override field (RequestFields read it).
    ///   - query: RequestPath's `query`.
    static func methods(in fields: ClientFields, namedInFields: Bool, query: Substring) -> [String] {
        var methods: [String] = []
        if namedInFields {
            fields.forEach { name, value in
                guard isOverrideField(name) else { return }
                append(fields.text(value), to: &methods)
            }
        }
        if mayNameMethod(query) {
            for value in QueryParameter.values(inQuery: query, whereName: isMethodParameter) {
                append(value, to: &methods)
            }
        }
        return methods
    }

    /// Whether `query` holds `method` in any case or a %-escape (which may spell it): only then
    /// are its names decoded.
    private static func mayNameMethod(_ query: Substring) -> Bool {
        query.utf8.withContiguousStorageIfAvailable { bytes in
            bytes.indices.contains { index in
                bytes[index] == UInt8(ascii: "%") || "method".utf8.elementsEqual(bytes[index...].prefix(6).lazy.map(ASCIIText.lowered))
            }
        } ?? true
    }

    /// `_method` as PHP reads a query's names: leading spaces dropped, then a space, `.` or `[`
    /// read as `_` (so `.method` and `+_method` are `_method` to Symfony and Laravel), in any
    /// case. Read on the name's decoded bytes, without a String made for each pair: no
    /// character outside ASCII lower-cases to one of `method`'s letters (a Kelvin sign becomes
    /// `k`, a dotted capital I an `i` with a dot above), so ASCII's case is the whole of it.
    private static func isMethodParameter(_ name: Substring.UTF8View.SubSequence) -> Bool {
        let wanted = "_method".utf8
        var matched = wanted.startIndex
        let whole = QueryParameter.forEachDecodedByte(of: name) { byte in
            if matched == wanted.startIndex, byte == UInt8(ascii: " ") { return true }
            guard matched < wanted.endIndex else { return false }
            let fits = matched == wanted.startIndex
                ? byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "[")
                : ASCIIText.lowered(byte) == wanted[matched]
            guard fits else { return false }
            matched = wanted.index(after: matched)
            return true
        }
        return whole && matched == wanted.endIndex
    }

    /// The value, and each element of it as a list, trimmed and upper-cased.
    private static func append(_ value: String, to methods: inout [String]) {
        let whole = Substring(value).trimmingSpaces.uppercased()
        methods.append(whole)
        guard whole.contains(",") else { return }
        for element in whole.split(separator: ",", omittingEmptySubsequences: false) {
            methods.append(String(element.trimmingSpaces))
        }
    }
}
