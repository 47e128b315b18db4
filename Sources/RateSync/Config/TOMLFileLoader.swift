import TOMLKit

/// Parses TOML text into `ConfigValue`s, expanding `${VAR}` references in keys and string values.
///
/// Expansion happens after parsing, on values, so an environment variable can never inject TOML
/// syntax, and a reference inside a comment is never expanded.
public enum TOMLFileLoader {
    public static func parse(
        _ text: String,
        file: String,
        environment: [String: String],
        sink: ConfigProblemSink
    ) -> [String: ConfigValue]? {
        if let (line, column) = unreadableTableHeader(in: text) {
            sink.report("", "invalid TOML at line \(line), column \(column): a table header must start with a key")
            return nil
        }
        let root: TOMLTable
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            sink.report(
                "",
                "invalid TOML at line \(error.source.begin.line), column \(error.source.begin.column): \(error.description)"
            )
            return nil
        } catch {
            sink.report("", "invalid TOML: \(error)")
            return nil
        }
        let expander = EnvironmentExpander(environment: environment)
        return convert(table: root, path: "", expander: expander, sink: sink)
    }

    /// The position of a table header whose first key starts with a byte no key or value can
    /// start with (`[>a]`, `[.a]`, `[é]`): the TOML library aborts the process on those (an
    /// assertion in its key parser) instead of reporting them. Lines inside multi-line strings
    /// are not headers.
    static func unreadableTableHeader(in text: String) -> (line: Int, column: Int)? {
        let space = UInt8(ascii: " "), tab = UInt8(ascii: "\t"), open = UInt8(ascii: "[")
        var inMultilineString = false
        for (index, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let bytes = Array(line.utf8)
            let delimiters = multilineDelimiters(in: bytes)
            defer { if delimiters % 2 == 1 { inMultilineString.toggle() } }
            guard !inMultilineString else { continue }
            var position = 0
            while position < bytes.count, bytes[position] == space || bytes[position] == tab { position += 1 }
            guard position < bytes.count, bytes[position] == open else { continue }
            position += 1
            if position < bytes.count, bytes[position] == open { position += 1 }
            while position < bytes.count, bytes[position] == space || bytes[position] == tab { position += 1 }
            guard position < bytes.count else { continue }
            if !mayStartKey(bytes[position]) { return (index + 1, position + 1) }
        }
        return nil
    }

    /// How many `"""` and `'''` a line holds.
    private static func multilineDelimiters(in bytes: [UInt8]) -> Int {
        var count = 0
        var index = 0
        while index + 2 < bytes.count {
            let byte = bytes[index]
            if (byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'")) && bytes[index + 1] == byte && bytes[index + 2] == byte {
                count += 1
                index += 3
            } else {
                index += 1
            }
        }
        return count
    }

    /// A byte that can begin a key (a bare key, a quoted one), or end an empty header. (A line of
    /// a multi-line array holding arrays also starts with `[`; one whose element starts otherwise
    /// is refused too, which no setting of ours needs.)
    private static func mayStartKey(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return "_-\"']\r".utf8.contains(byte)
        }
    }

    private static func convert(
        table: TOMLTable,
        path: String,
        expander: EnvironmentExpander,
        sink: ConfigProblemSink
    ) -> [String: ConfigValue] {
        var result: [String: ConfigValue] = [:]
        for (rawKey, value) in table {
            let key = expand(rawKey, at: join(path, rawKey), expander: expander, sink: sink) ?? rawKey
            let childPath = join(path, key)
            if let converted = convert(value: value, path: childPath, expander: expander, sink: sink) {
                result[key] = converted
            }
        }
        return result
    }

    private static func convert(
        value: TOMLValueConvertible,
        path: String,
        expander: EnvironmentExpander,
        sink: ConfigProblemSink
    ) -> ConfigValue? {
        switch value.type {
        case .string:
            guard let text = value.string else { return nil }
            return expand(text, at: path, expander: expander, sink: sink).map(ConfigValue.string)
        case .int:
            return value.int.map(ConfigValue.integer)
        case .double:
            return value.double.map(ConfigValue.float)
        case .bool:
            return value.bool.map(ConfigValue.boolean)
        case .table:
            guard let table = value.table else { return nil }
            return .table(convert(table: table, path: path, expander: expander, sink: sink))
        case .array:
            guard let array = value.array else { return nil }
            var items: [ConfigValue] = []
            for (index, item) in array.enumerated() {
                if let converted = convert(value: item, path: "\(path)[\(index)]", expander: expander, sink: sink) {
                    items.append(converted)
                }
            }
            return .array(items)
        case .date, .time, .dateTime:
            return .other(typeName: value.type.description)
        }
    }

    private static func expand(
        _ text: String,
        at path: String,
        expander: EnvironmentExpander,
        sink: ConfigProblemSink
    ) -> String? {
        do {
            return try expander.expand(text)
        } catch {
            switch error {
            case .unsetVariable(let name):
                sink.report(path, "environment variable \(name) is not set and has no default (write ${\(name):-value} to give one)")
            case .unterminatedReference:
                sink.report(path, "unterminated ${...} reference")
            case .badVariableName(let name):
                sink.report(path, "\"\(name)\" is not a valid environment variable name in ${...}")
            }
            return nil
        }
    }

    static func join(_ path: String, _ key: String) -> String {
        path.isEmpty ? key : "\(path).\(key)"
    }
}
