import EventLoopSupport
import NIOCore
import NIOEmbedded
import XCTest

/// The flushes an event loop's tick asks for: done together once the loop runs its tasks, after
/// the ready sockets are handled.
final class TickFlushesTests: XCTestCase {
    /// Records its flushes in a log shared by several writers, to see their order.
    private final class Writer: TickFlushable {
        let name: String
        let log: Log
        var onFlush: (() -> Void)?

        init(_ name: String, log: Log) {
            self.name = name
            self.log = log
        }

        func flushNow() {
            log.entries.append(name)
            onFlush?()
        }
    }

    private final class Log {
        var entries: [String] = []
    }

    private var loop: EmbeddedEventLoop!
    private var flushes: TickFlushes!
    private var log: Log!

    override func setUp() {
        loop = EmbeddedEventLoop()
        flushes = TickFlushes(eventLoop: loop)
        log = Log()
    }

    func testFlushesWaitForTheLoopsTasksThenGoInTheOrderAskedOnce() {
        let upstream = Writer("upstream", log: log)
        let client = Writer("client", log: log)
        flushes.flushAtEndOfTick(upstream)
        flushes.flushAtEndOfTick(client)
        // The same writer twice in a row (an exchange's upstream asks as its request starts,
        // and again as the read that brought more of the request's body ends).
        flushes.flushAtEndOfTick(client)
        XCTAssertEqual(log.entries, [], "nothing is flushed while the tick's sockets are handled")
        loop.run()
        XCTAssertEqual(log.entries, ["upstream", "client"])
        loop.run()
        XCTAssertEqual(log.entries, ["upstream", "client"], "a batch is flushed once")
    }

    func testAFlushAskedForAfterABatchGoesInTheNext() {
        let first = Writer("first", log: log)
        let second = Writer("second", log: log)
        flushes.flushAtEndOfTick(first)
        loop.run()
        flushes.flushAtEndOfTick(second)
        flushes.flushAtEndOfTick(first)
        XCTAssertEqual(log.entries, ["first"])
        loop.run()
        XCTAssertEqual(log.entries, ["first", "second", "first"])
    }

    func testAFlushThatAsksForAnotherIsNotLost() {
        let retried = Writer("retried", log: log)
        let failing = Writer("failing", log: log)
        // A flush that fails an exchange, which moves on to another connection and asks again.
        let flushes = self.flushes!
        failing.onFlush = { flushes.flushAtEndOfTick(retried) }
        flushes.flushAtEndOfTick(failing)
        loop.run()
        XCTAssertEqual(log.entries, ["failing", "retried"])
    }
}
