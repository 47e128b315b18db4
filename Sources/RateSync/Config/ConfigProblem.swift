/// One thing wrong with a config file, located by file and table path
/// (`rate-sync.toml: limiters.auth.window_seconds: expected a number greater than 0, found -5`).
public struct ConfigProblem: Sendable, Equatable, CustomStringConvertible {
    public let file: String
    public let path: String
    public let message: String

    public init(file: String, path: String, message: String) {
        self.file = file
        self.path = path
        self.message = message
    }

    public var description: String {
        path.isEmpty ? "\(file): \(message)" : "\(file): \(path): \(message)"
    }
}

/// Every problem found while loading, reported together so an operator fixes them in one pass.
public struct ConfigError: Error, Sendable, CustomStringConvertible {
    public let problems: [ConfigProblem]

    public init(problems: [ConfigProblem]) {
        self.problems = problems
    }

    public var description: String {
        problems.map(\.description).joined(separator: "\n")
    }
}

/// Collects problems while one file is read. Used only during loading, never shared.
public final class ConfigProblemSink {
    public let file: String
    public private(set) var problems: [ConfigProblem] = []

    public init(file: String) {
        self.file = file
    }

    public func report(_ path: String, _ message: String) {
        problems.append(ConfigProblem(file: file, path: path, message: message))
    }

    /// Throws every collected problem, if there are any.
    public func throwIfAny() throws {
        if !problems.isEmpty {
            throw ConfigError(problems: problems)
        }
    }
}
