/// A config value after `${VAR}` expansion: our own tree, so that TOMLKit stays inside the
/// loader and every reader works on plain Swift values.
public indirect enum ConfigValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    case table([String: ConfigValue])
    case array([ConfigValue])
    /// Dates and times: TOML allows them, no key of ours takes them.
    case other(typeName: String)

    /// How a value is named in "found ..." parts of error messages.
    public var description: String {
        switch self {
        case .string(let text): return "\"\(text)\""
        case .integer(let number): return String(number)
        case .float(let number): return String(number)
        case .boolean(let flag): return String(flag)
        case .table: return "a table"
        case .array: return "an array"
        case .other(let typeName): return "a \(typeName)"
        }
    }
}
