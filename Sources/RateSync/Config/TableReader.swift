/// Reads typed fields out of one config table, reporting every problem to a sink with its full
/// table path, and remembering which keys were read so that unknown keys can be reported.
///
/// Numbers and booleans may also be written as strings (after `${VAR}` expansion a value such as
/// `rate_per_second = "${RATE:-1.0}"` is text): a string that reads as the expected type is taken
/// as that type, as rate-sync does.
public final class TableReader {
    public let path: String
    public let sink: ConfigProblemSink
    private let table: [String: ConfigValue]
    private var readKeys: Set<String> = []

    public init(_ table: [String: ConfigValue], path: String, sink: ConfigProblemSink) {
        self.table = table
        self.path = path
        self.sink = sink
    }

    public var keys: [String] { table.keys.sorted() }

    public func has(_ key: String) -> Bool { table[key] != nil }

    public func fieldPath(_ key: String) -> String { TOMLFileLoader.join(path, key) }

    public func report(_ key: String, _ message: String) {
        sink.report(fieldPath(key), message)
    }

    /// Looks a value up and marks the key as known.
    public func raw(_ key: String) -> ConfigValue? {
        readKeys.insert(key)
        return table[key]
    }

    /// Marks keys as known without reading them (for keys accepted and ignored).
    public func accept(_ keys: String...) {
        readKeys.formUnion(keys)
    }

    public func string(_ key: String, required: Bool = false) -> String? {
        guard let value = raw(key) else {
            if required { report(key, "missing required key (expected a string)") }
            return nil
        }
        switch value {
        case .string(let text): return text
        case .integer(let number): return String(number)
        default:
            report(key, "expected a string, found \(value.description)")
            return nil
        }
    }

    public func bool(_ key: String) -> Bool? {
        guard let value = raw(key) else { return nil }
        switch value {
        case .boolean(let flag): return flag
        case .string(let text) where text.lowercased() == "true": return true
        case .string(let text) where text.lowercased() == "false": return false
        default:
            report(key, "expected true or false, found \(value.description)")
            return nil
        }
    }

    /// A number; `positive` rejects zero and negatives with a message naming the bound.
    /// - Parameter maximum: the largest value accepted (a documented range keeps arithmetic on
    ///   it from overflowing later).
    public func double(_ key: String, required: Bool = false, positive: Bool = false, maximum: Double? = nil) -> Double? {
        guard let value = raw(key) else {
            if required { report(key, "missing required key (expected a number)") }
            return nil
        }
        let number: Double?
        switch value {
        case .integer(let whole): number = Double(whole)
        case .float(let real): number = real
        case .string(let text): number = Double(String(text.trimmedSpaces))
        default: number = nil
        }
        guard let number, number.isFinite else {
            report(key, "expected a number, found \(value.description)")
            return nil
        }
        if positive && number <= 0 {
            report(key, "expected a number greater than 0, found \(value.description)")
            return nil
        }
        if let maximum, number > maximum {
            report(key, "expected a number of at most \(Self.plain(maximum)), found \(value.description)")
            return nil
        }
        return number
    }

    /// `1000000000` rather than `1e+09`.
    private static func plain(_ number: Double) -> String {
        number.rounded() == number && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }

    /// A whole number, at least `minimum` when one is given.
    public func integer(_ key: String, required: Bool = false, minimum: Int? = nil, maximum: Int? = nil) -> Int? {
        guard let value = raw(key) else {
            if required { report(key, "missing required key (expected a whole number)") }
            return nil
        }
        let number: Int?
        switch value {
        case .integer(let whole): number = whole
        case .float(let real) where real.rounded() == real && abs(real) < 1e15: number = Int(real)
        case .string(let text): number = Int(String(text.trimmedSpaces))
        default: number = nil
        }
        guard let number else {
            report(key, "expected a whole number, found \(value.description)")
            return nil
        }
        if let minimum, number < minimum {
            let bound = minimum == 1 ? "greater than 0" : "at least \(minimum)"
            report(key, "expected a whole number \(bound), found \(value.description)")
            return nil
        }
        if let maximum, number > maximum {
            report(key, "expected a whole number of at most \(maximum), found \(value.description)")
            return nil
        }
        return number
    }

    public func stringArray(_ key: String) -> [String]? {
        guard let value = raw(key) else { return nil }
        guard case .array(let items) = value else {
            report(key, "expected an array of strings, found \(value.description)")
            return nil
        }
        var strings: [String] = []
        for (index, item) in items.enumerated() {
            guard case .string(let text) = item else {
                sink.report("\(fieldPath(key))[\(index)]", "expected a string, found \(item.description)")
                return nil
            }
            strings.append(text)
        }
        return strings
    }

    /// A sub-table such as `[server]`.
    public func table(_ key: String) -> TableReader? {
        guard let value = raw(key) else { return nil }
        guard case .table(let child) = value else {
            report(key, "expected a table, found \(value.description)")
            return nil
        }
        return TableReader(child, path: fieldPath(key), sink: sink)
    }

    /// A table of named tables such as `[limiters.auth]`, `[limiters.public]`, in name order.
    public func namedTables(_ key: String) -> [(name: String, reader: TableReader)] {
        guard let parent = table(key) else { return [] }
        var result: [(String, TableReader)] = []
        for name in parent.keys {
            if let child = parent.table(name) {
                result.append((name, child))
            }
        }
        return result
    }

    /// An array of tables such as `[[routes]]`, in file order.
    public func arrayOfTables(_ key: String) -> [TableReader] {
        guard let value = raw(key) else { return [] }
        guard case .array(let items) = value else {
            report(key, "expected an array of tables ([[\(key)]]), found \(value.description)")
            return []
        }
        var readers: [TableReader] = []
        for (index, item) in items.enumerated() {
            let itemPath = "\(fieldPath(key))[\(index)]"
            guard case .table(let child) = item else {
                sink.report(itemPath, "expected a table, found \(item.description)")
                continue
            }
            readers.append(TableReader(child, path: itemPath, sink: sink))
        }
        return readers
    }

    /// Reports a concept written with both of its accepted spellings, and returns the one used.
    public func spellingOf(_ preferred: String, _ alternative: String) -> String {
        accept(preferred, alternative)
        if has(preferred) && has(alternative) {
            report(alternative, "\"\(preferred)\" and \"\(alternative)\" are two spellings of one setting: keep one")
        }
        return has(alternative) && !has(preferred) ? alternative : preferred
    }

    /// Reports every key that no reader asked for. Call once the table has been read.
    public func rejectUnknownKeys() {
        let known = readKeys.sorted().joined(separator: ", ")
        for key in keys where !readKeys.contains(key) {
            report(key, "unknown key (expected one of: \(known))")
        }
    }
}

extension String {
    var trimmedSpaces: Substring {
        let start = firstIndex { $0 != " " } ?? endIndex
        let end = lastIndex { $0 != " " }.map { index(after: $0) } ?? start
        return self[start..<max(start, end)]
    }
}
