import Foundation
import NIOConcurrencyHelpers
import NIOCore
import RateSync

#if canImport(Glibc)
import Glibc
#endif

/// One JSON line per request, to standard output or a file.
///
/// Lines are written into per-event-loop batches (AccessLogBatch) as bytes, and a batch is handed
/// here at most every `AccessLogBatch.flushInterval` (or once it is large): one lock and at most
/// one wake-up of the writer for all the lines of that time, instead of one per event-loop tick
/// (a wake-up is a context switch, and costs more than the lines of a tick).
/// A writer thread does the blocking write, so a slow disk or a full pipe never stalls request
/// handling (past `maxBufferedBytes`, batches are dropped and their lines counted rather than
/// memory growing without bound).
public final class AccessLog: Sendable {
    private struct Queue {
        var chunks: [ByteBuffer] = []
        var bytes = 0
        var droppedLines = 0
        var stopping = false
    }

    private static let maxBufferedBytes = 8 << 20

    private let fileDescriptor: Int32
    private let ownsDescriptor: Bool
    private let queue = NIOLockedValueBox(Queue())
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

    /// Takes a batch of whole lines.
    func enqueue(_ chunk: ByteBuffer, lines: Int) {
        let wasEmpty = queue.withLockedValue { queue -> Bool in
            guard queue.bytes < Self.maxBufferedBytes else {
                queue.droppedLines += lines
                return false
            }
            let wasEmpty = queue.chunks.isEmpty
            queue.chunks.append(chunk)
            queue.bytes += chunk.readableBytes
            return wasEmpty
        }
        if wasEmpty { wake.signal() }
    }

    /// Writes what is queued and stops the writer (at shutdown). Batches still on event loops
    /// are flushed by those loops before this is called.
    public func close() {
        queue.withLockedValue { $0.stopping = true }
        wake.signal()
        _ = finished.wait(timeout: .now() + 5)
        if ownsDescriptor { Glibc.close(fileDescriptor) }
    }

    private func drainForever() {
        while true {
            wake.wait()
            let (chunks, dropped, stopping) = queue.withLockedValue { queue in
                defer {
                    queue.chunks.removeAll(keepingCapacity: true)
                    queue.bytes = 0
                    queue.droppedLines = 0
                }
                return (queue.chunks, queue.droppedLines, queue.stopping)
            }
            for chunk in chunks { writeFully(chunk.readableBytesView) }
            if dropped > 0 {
                writeFully(ByteBuffer(string: "{\"event\":\"access_log_overflow\",\"dropped\":\(dropped)}\n").readableBytesView)
            }
            if stopping {
                finished.signal()
                return
            }
        }
    }

    private func writeFully(_ bytes: ByteBufferView) {
        var remaining = bytes[...]
        while !remaining.isEmpty {
            let written = remaining.withUnsafeBytes { Glibc.write(fileDescriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                return
            }
            remaining = remaining.dropFirst(written)
        }
    }
}

/// One event loop's access-log lines, written as bytes and handed to the AccessLog at most
/// `flushInterval` after the first of them (or at once when the batch grows large). Only its
/// loop touches it.
final class AccessLogBatch {
    private static let flushBytes = 64 * 1024
    /// How long a line may wait in its loop's batch: short enough to read as immediate, long
    /// enough that a loaded gateway wakes the writer a few times a second, not per tick.
    static let flushInterval = TimeAmount.milliseconds(50)

    private let log: AccessLog
    private let eventLoop: any EventLoop
    private var buffer: ByteBuffer
    private var lines = 0
    private var flushScheduled = false
    private var clock = AccessLogClock()

    init(log: AccessLog, eventLoop: any EventLoop) {
        self.log = log
        self.eventLoop = eventLoop
        buffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
    }

    func append(_ entry: AccessLogEntry) {
        entry.write(into: &buffer, now: .now(), clock: &clock)
        lines += 1
        if buffer.readableBytes >= Self.flushBytes {
            flush()
        } else if !flushScheduled {
            flushScheduled = true
            eventLoop.assumeIsolated().scheduleTask(in: Self.flushInterval) { self.flush() }
        }
    }

    func flush() {
        flushScheduled = false
        guard lines > 0 else { return }
        log.enqueue(buffer, lines: lines)
        buffer = ByteBufferAllocator().buffer(capacity: 16 * 1024)
        lines = 0
    }
}

public struct AccessLogError: Error, CustomStringConvertible {
    public let description: String
}

/// Wall-clock nanoseconds since the Unix epoch, cheap to take on every request.
struct NIOTimestamp {
    let nanoseconds: Int64

    static func now() -> NIOTimestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return NIOTimestamp(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
    }
}
