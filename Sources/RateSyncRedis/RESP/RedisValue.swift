/// A parsed Redis reply.
public enum RedisValue: Sendable, Equatable {
    case simpleString(String)
    case error(String)
    case integer(Int)
    case bulkString(String)
    case null
    case array([RedisValue])

    /// The reply as text, for replies that are text (or numbers rendered as text by Lua).
    public var string: String? {
        switch self {
        case .simpleString(let text), .bulkString(let text): return text
        case .integer(let number): return String(number)
        default: return nil
        }
    }

    public var integer: Int? {
        switch self {
        case .integer(let number): return number
        case .bulkString(let text), .simpleString(let text): return Int(text)
        default: return nil
        }
    }
}

/// A reply that could not be parsed, or a connection that misbehaved: the connection is reset.
public struct RedisProtocolError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
