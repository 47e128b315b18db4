import Foundation
import NIOConcurrencyHelpers
import RateSync

#if canImport(Glibc)
import Glibc
#endif

/// One JSON line per request, to standard output or a file. The event loop only appends the
/// line to a buffer under a short lock; a writer thread does the blocking write, so a slow disk
/// or a full pipe never stalls request handling (past `maxBufferedBytes`, lines are dropped and
/// counted rather than memory growing without bound).
public final class AccessLog: Sendable {
    private struct Buffer {
        var lines: [String] = []
        var bytes = 0
        var dropped = 0
        var stopping = false
    }

    private static let maxBufferedBytes = 8 << 20

    private let fileDescriptor: Int32
    private let ownsDescriptor: Bool
    private let buffer = NIOLockedValueBox(Buffer())
    private let wake = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)

    /// - Parameter path: nil or "-" for standard output, else a file appended to.
    public init(path: String?) throws {
        if let path, path != "-" {
            let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else {
                throw AccessLogError(description: "cannot open access log \(path): \(String(cString: strerror(errno)))")
            }
            fileDescriptor = descriptor
            ownsDescriptor = true
        } else {
            fileDescriptor = STDOUT_FILENO
            ownsDescriptor = false
        }
        let thread = Thread { [self] in self.drainForever() }
        thread.name = "access-log"
        thread.start()
    }

    public func write(_ line: String) {
        let wasEmpty = buffer.withLockedValue { buffer -> Bool in
            guard buffer.bytes < Self.maxBufferedBytes else {
                buffer.dropped += 1
                return false
            }
            let wasEmpty = buffer.lines.isEmpty
            buffer.lines.append(line)
            buffer.bytes += line.utf8.count
            return wasEmpty
        }
        if wasEmpty { wake.signal() }
    }

    /// Writes what is buffered and stops the writer (at shutdown).
    public func close() {
        buffer.withLockedValue { $0.stopping = true }
        wake.signal()
        _ = finished.wait(timeout: .now() + 5)
        if ownsDescriptor { Glibc.close(fileDescriptor) }
    }

    private func drainForever() {
        while true {
            wake.wait()
            let (lines, dropped, stopping) = buffer.withLockedValue { buffer in
                defer {
                    buffer.lines.removeAll(keepingCapacity: true)
                    buffer.bytes = 0
                    buffer.dropped = 0
                }
                return (buffer.lines, buffer.dropped, buffer.stopping)
            }
            var chunk = lines.joined(separator: "\n")
            if !lines.isEmpty { chunk += "\n" }
            if dropped > 0 { chunk += "{\"event\":\"access_log_overflow\",\"dropped\":\(dropped)}\n" }
            writeFully(chunk)
            if stopping {
                finished.signal()
                return
            }
        }
    }

    private func writeFully(_ text: String) {
        var bytes = Array(text.utf8)[...]
        while !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { Glibc.write(fileDescriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            bytes = bytes.dropFirst(written)
        }
    }
}

public struct AccessLogError: Error, CustomStringConvertible {
    public let description: String
}

/// What one request's access-log line says.
struct AccessLogEntry {
    var start: NIOTimestamp
    var client: String
    var method: String
    var path: String
    var route: String?
    var limiter: String?
    var outcome: String?
    var upstream: String?
    var upstreamMilliseconds: Double?
    var status = 0

    func json(now: NIOTimestamp) -> String {
        let duration = Double(now.nanoseconds - start.nanoseconds) / 1e6
        var line = "{\"time\":\"\(start.rfc3339)\",\"client\":\(quoted(client)),\"method\":\(quoted(method))"
        line += ",\"path\":\(quoted(path)),\"status\":\(status)"
        line += ",\"route\":\(route.map(quoted) ?? "null"),\"limiter\":\(limiter.map(quoted) ?? "null")"
        line += ",\"outcome\":\(outcome.map(quoted) ?? "null"),\"upstream\":\(upstream.map(quoted) ?? "null")"
        line += ",\"upstream_ms\":\(upstreamMilliseconds.map(Self.milliseconds) ?? "null")"
        line += ",\"duration_ms\":\(Self.milliseconds(duration))}"
        return line
    }

    private func quoted(_ text: String) -> String { ErrorBody.jsonString(text) }

    private static func milliseconds(_ value: Double) -> String {
        String(Double(Int((value * 1000).rounded())) / 1000)
    }
}

/// Wall-clock nanoseconds since the Unix epoch, cheap to take on every request.
struct NIOTimestamp {
    let nanoseconds: Int64

    static func now() -> NIOTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return NIOTimestamp(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }

    /// `2026-11-27T05:10:00.123Z`, without Foundation's (slow) date formatting.
    var rfc3339: String {
        var seconds = time_t(nanoseconds / 1_000_000_000)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        let millis = Int32((nanoseconds / 1_000_000) % 1000)
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(millis, 3))Z"
    }
}
