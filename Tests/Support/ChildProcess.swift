import Foundation
import NIOConcurrencyHelpers

/// A program the test starts for real, whose output is collected so the test can wait for a
/// line (such as "listening ...") and read what it printed.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    private let output = NIOLockedValueBox("")
    /// Set once the output pipe reached its end: everything the program wrote is in `output`.
    private let outputEnded = NIOLockedValueBox(false)

    public init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:], directory: URL? = nil) throws {
        process.executableURL = executable
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        env.merge(environment) { $1 }
        process.environment = env
        if let directory { process.currentDirectoryURL = directory }
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = self.output
        let outputEnded = self.outputEnded
        pipe.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
                outputEnded.withLockedValue { $0 = true }
            } else {
                output.withLockedValue { $0 += String(decoding: data, as: UTF8.self) }
            }
        }
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    public var text: String { output.withLockedValue { $0 } }
    public var isRunning: Bool { process.isRunning }

    /// Waits until a line containing `marker` appears and returns it.
    public func waitForLine(containing marker: String, timeout: TimeInterval = 20) throws -> String {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if let line = text.split(separator: "\n").first(where: { $0.contains(marker) }) { return String(line) }
            if !process.isRunning { break }
            usleep(20_000)
        }
        throw HarnessError("no line containing \"\(marker)\" within \(timeout)s; output:\n\(text)")
    }

    /// Waits for the process to exit and returns its status; its output is then all in `text`
    /// (the pipe is read on another thread, which may still be at work when the process ends).
    public func waitForExit(timeout: TimeInterval = 20) throws -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        guard !process.isRunning else { throw HarnessError("still running after \(timeout)s") }
        // A child of the program may hold the pipe open: its end is waited for a moment only.
        let drained = Date().addingTimeInterval(2)
        while !outputEnded.withLockedValue({ $0 }) && Date() < drained { usleep(2_000) }
        return process.terminationStatus
    }

    public func stop() {
        if process.isRunning {
            process.terminate()
            _ = try? waitForExit(timeout: 5)
        }
        if process.isRunning { kill(pid, SIGKILL) }
    }

    /// Resident memory now and at its peak, in bytes, from /proc.
    public func memory() -> (rss: Int, peak: Int) {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) * 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    deinit { stop() }
}

public struct HarnessError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Where `swift build` put the package's executables: beside the test bundle.
public enum Binaries {
    public static var directory: URL {
        if let overridden = ProcessInfo.processInfo.environment["RATESYNC_BIN_DIR"] {
            return URL(fileURLWithPath: overridden)
        }
        var candidate = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for _ in 0..<4 {
            if FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("ratesync-gateway").path) {
                return candidate
            }
            candidate.deleteLastPathComponent()
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug")
    }

    public static let gateway = directory.appendingPathComponent("ratesync-gateway")
    public static let demoUpstream = directory.appendingPathComponent("ratesync-demo-upstream")
}

/// The port in a line such as "... listening on [IPv4]127.0.0.1/127.0.0.1:40123" or
/// "proxy=[IPv4]127.0.0.1/127.0.0.1:40123".
public func port(after key: String, in line: String) throws -> Int {
    guard let range = line.range(of: key) else { throw HarnessError("no \(key) in \(line)") }
    let rest = line[range.upperBound...].prefix { $0 != " " }
    guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]) else {
        throw HarnessError("no port in \(line)")
    }
    return port
}

/// A TCP port nothing listens on (bound, then released).
public func unusedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Int32 in
            guard bind(fd, pointer, length) == 0 else { return -1 }
            return getsockname(fd, pointer, &length)
        }
    }
    guard bound == 0 else { throw HarnessError("cannot bind a probe socket") }
    return Int(UInt16(bigEndian: address.sin_port))
}
