import Foundation

/// A real PostgreSQL server (Debian's `postgresql`) on a free loopback port, in a fresh data
/// directory, for one test. PostgreSQL refuses to run as root: under root, the server and
/// `initdb` run as the `postgres` user the package creates.
public final class PostgresServer {
    public let port: Int
    public let process: ChildProcess
    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/postgres" }
    private let directory: URL

    public init(port: Int? = nil) throws {
        let port = try port ?? unusedPort()
        self.port = port
        let bin = try Self.binaries()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("postgres-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let data = directory.appendingPathComponent("data").path
        if getuid() == 0 {
            let owner = try runProgram("/usr/bin/id", ["-u", "postgres"], stdoutOnly: true).output.trimmingCharacters(in: .whitespacesAndNewlines)
            guard let uid = uid_t(owner) else { throw HarnessError("no postgres user to run PostgreSQL as (not root)") }
            chown(directory.path, uid, gid_t(uid_t.max))
        }
        let initdb = try runProgram(
            Self.asServerUser,
            Self.asServerUserArguments + ["\(bin)/initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        guard initdb.status == 0 else { throw HarnessError("initdb failed: \(initdb.output)") }
        process = try ChildProcess(
            URL(fileURLWithPath: Self.asServerUser),
            Self.asServerUserArguments + [
                "\(bin)/postgres", "-D", data, "-p", String(port), "-k", directory.path,
                "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=200",
            ]
        )
        _ = try process.waitForLine(containing: "ready to accept connections", timeout: 30)
    }

    /// The newest installed server's programs.
    static func binaries() throws -> String {
        let root = "/usr/lib/postgresql"
        let versions = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        guard let newest = versions.compactMap(Int.init).max() else {
            throw HarnessError("PostgreSQL is not installed (Debian package postgresql: /usr/lib/postgresql/<version>/bin)")
        }
        return "\(root)/\(newest)/bin"
    }

    /// Root runs the server as `postgres` (setpriv execs it, so signals reach the server itself).
    private static var asServerUser: String { getuid() == 0 ? "/usr/bin/setpriv" : "/usr/bin/env" }
    private static var asServerUserArguments: [String] {
        getuid() == 0 ? ["--reuid=postgres", "--regid=postgres", "--init-groups", "--"] : []
    }

    /// Runs one SQL command with psql and returns its unaligned, tuples-only output.
    @discardableResult
    public func sql(_ command: String) throws -> String {
        let result = try runProgram(
            "\(try Self.binaries())/psql",
            ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", "postgres", "-At", "-v", "ON_ERROR_STOP=1", "-c", command],
            stdoutOnly: true
        )
        guard result.status == 0 else { throw HarnessError("psql failed on \(command): \(result.output)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func pause() { kill(process.pid, SIGSTOP) }
    public func resume() { kill(process.pid, SIGCONT) }

    public func stop() {
        resume()
        if process.isRunning {
            // Fast shutdown: disconnect clients and stop at once.
            kill(process.pid, SIGINT)
            _ = try? process.waitForExit(timeout: 10)
        }
        process.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }
}
