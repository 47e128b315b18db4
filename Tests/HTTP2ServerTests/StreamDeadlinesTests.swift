@testable import HTTP2Server
import NIOCore
import NIOEmbedded
import XCTest

/// The streams of a connection share one timer: each stream is told no later than the nearest
/// deadline it was given, whatever it arms after.
final class StreamDeadlinesTests: XCTestCase {
    private final class Holder: StreamDeadlineHolder {
        var told: [NIODeadline] = []
        let loop: EmbeddedEventLoop
        init(loop: EmbeddedEventLoop) { self.loop = loop }
        func deadlineReached() { told.append(loop.now) }
    }

    func testANearerDeadlineStandsWhenALaterOneIsArmedAfterIt() {
        let loop = EmbeddedEventLoop()
        let deadlines = StreamDeadlines(eventLoop: loop)
        let stalled = Holder(loop: loop)
        let start = loop.now
        // A client stops reading (its send deadline), then its body's idle deadline is armed.
        deadlines.arm(stalled, at: start + .seconds(10))
        deadlines.arm(stalled, at: start + .seconds(60))
        loop.advanceTime(by: .seconds(10))
        XCTAssertEqual(stalled.told, [start + .seconds(10)], "the nearer deadline is kept")

        // A nearer deadline armed after a later one moves the stream's time forward.
        let waiting = Holder(loop: loop)
        let now = loop.now
        deadlines.arm(waiting, at: now + .seconds(60))
        deadlines.arm(waiting, at: now + .seconds(5))
        loop.advanceTime(by: .seconds(5))
        XCTAssertEqual(waiting.told, [now + .seconds(5)])

        // Each stream is told at its own time; a disarmed one is not told.
        let first = Holder(loop: loop), second = Holder(loop: loop), gone = Holder(loop: loop)
        let later = loop.now
        deadlines.arm(first, at: later + .seconds(1))
        deadlines.arm(second, at: later + .seconds(2))
        deadlines.arm(gone, at: later + .seconds(1))
        deadlines.disarm(gone)
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(first.told, [later + .seconds(1)])
        XCTAssertEqual(second.told, [])
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(second.told, [later + .seconds(2)])
        XCTAssertEqual(gone.told, [])
        XCTAssertEqual(stalled.told.count, 1, "told once; a stream told is forgotten until it arms again")
    }
}
