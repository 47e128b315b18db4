import Foundation

/// A real Redis Sentinel on a free loopback port, monitoring one primary, for one test.
public final class RedisSentinel {
    public let port: Int
    public let process: ChildProcess
    private let directory: URL

    public init(monitoring primaryPort: Int, masterName: String = "mymaster", quorum: Int = 2) throws {
        port = try unusedPort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sentinel-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        // Sentinel rewrites its config file as it learns: it must be its own and writable.
        let config = directory.appendingPathComponent("sentinel.conf")
        try """
        port \(port)
        bind 127.0.0.1
        dir \(directory.path)
        sentinel monitor \(masterName) 127.0.0.1 \(primaryPort) \(quorum)
        sentinel down-after-milliseconds \(masterName) 1000
        sentinel failover-timeout \(masterName) 5000
        sentinel parallel-syncs \(masterName) 2

        """.write(to: config, atomically: true, encoding: .utf8)
        process = try ChildProcess(URL(fileURLWithPath: RedisServer.executable), [config.path, "--sentinel"])
        _ = try process.waitForLine(containing: "+monitor master")
    }

    /// Runs redis-cli against this sentinel and returns its output, trimmed.
    @discardableResult
    public func cli(_ arguments: [String]) throws -> String {
        let result = try runProgram("/usr/bin/redis-cli", ["-p", String(port)] + arguments, stdoutOnly: true)
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The primary's port as this sentinel sees it now.
    public func primaryPort(of masterName: String = "mymaster") throws -> Int? {
        Int(try cli(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName]).split(separator: "\n").last ?? "")
    }

    /// A field of `SENTINEL MASTER <name>` (e.g. "num-slaves", "num-other-sentinels").
    public func masterField(_ field: String, of masterName: String = "mymaster") throws -> String? {
        let lines = try cli(["SENTINEL", "MASTER", masterName]).split(separator: "\n").map(String.init)
        guard let index = lines.firstIndex(of: field), index + 1 < lines.count else { return nil }
        return lines[index + 1]
    }

    public func stop() {
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
