import Foundation

/// A real redis-server on a free loopback port, without persistence, for one test.
public final class RedisServer {
    public let port: Int
    public let process: ChildProcess
    public var url: String { "redis://127.0.0.1:\(port)/0" }
    /// The server's own working directory: a replica writes the data it receives there, and a
    /// server loads what it finds there at start, so no two servers may share one.
    private let directory: URL

    /// - Parameters:
    ///   - port: a fixed port (to restart a server where clients expect it); default a free one.
    ///   - extraArguments: e.g. `["--requirepass", "secret"]`.
    ///   - tls: serve TLS only, on `port`, with these PEM files.
    public init(port: Int? = nil, extraArguments: [String] = [], tls: (cert: String, key: String, ca: String)? = nil) throws {
        let port = try port ?? unusedPort()
        self.port = port
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var arguments = ["--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", directory.path]
        if let tls {
            arguments += [
                "--port", "0", "--tls-port", String(port), "--tls-cert-file", tls.cert, "--tls-key-file", tls.key,
                "--tls-ca-cert-file", tls.ca, "--tls-auth-clients", "no",
            ]
        } else {
            arguments += ["--port", String(port)]
        }
        process = try ChildProcess(URL(fileURLWithPath: Self.executable), arguments + extraArguments)
        _ = try process.waitForLine(containing: "Ready to accept connections")
    }

    public static var executable: String {
        ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
            ?? "/usr/bin/redis-server"
    }

    /// Runs redis-cli against this server and returns its output, trimmed.
    @discardableResult
    public func cli(_ arguments: [String], password: String? = nil) throws -> String {
        let auth = password.map { ["-a", $0, "--no-auth-warning"] } ?? []
        let result = try runProgram("/usr/bin/redis-cli", ["-p", String(port)] + auth + arguments, stdoutOnly: true)
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Calls of one command since the server started, from INFO commandstats.
    public func calls(of command: String, password: String? = nil) throws -> Int {
        let stats = try cli(["INFO", "commandstats"], password: password)
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
            let calls = line.split(separator: ",").first?.split(separator: "=").last
        else { return 0 }
        return Int(calls) ?? 0
    }

    public func pause() { kill(process.pid, SIGSTOP) }
    public func resume() { kill(process.pid, SIGCONT) }

    public func stop() {
        resume()
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
