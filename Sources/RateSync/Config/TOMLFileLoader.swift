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
