import EventLoopSupport
import NIOCore
import NIOEmbedded
import XCTest

/// A connection's one timer: when it fires, and what holds it while it waits.
final class ConnectionTimerTests: XCTestCase {
    func testItFiresOnceAtTheNearestDeadlineItWasArmedFor() {
        let loop = EmbeddedEventLoop()
        var fired = 0
        let timer = ConnectionTimer(eventLoop: loop) { fired += 1 }
        let start = loop.now
        timer.arm(at: start + .seconds(10))
        timer.arm(at: start + .seconds(5))
        timer.arm(at: start + .seconds(30))
        loop.advanceTime(to: start + .seconds(4))
        XCTAssertEqual(fired, 0)
        loop.advanceTime(to: start + .seconds(5))
        XCTAssertEqual(fired, 1, "a nearer deadline re-arms it; a later one waits for the firing")
        loop.advanceTime(to: start + .seconds(60))
        XCTAssertEqual(fired, 1, "a firing disarms it: its owner re-arms for what is left")
        timer.arm(at: start + .seconds(70))
        loop.advanceTime(to: start + .seconds(70))
        XCTAssertEqual(fired, 2)
    }

    func testACancelledTimerDoesNotFire() {
        let loop = EmbeddedEventLoop()
        var fired = 0
        let timer = ConnectionTimer(eventLoop: loop) { fired += 1 }
        timer.arm(at: loop.now + .seconds(1))
        timer.cancel()
        loop.advanceTime(by: .seconds(2))
        XCTAssertEqual(fired, 0)
    }

    func testTheLoopHoldsAnArmedTimerUntilItFiresAndItsOwnerIsHeldAsTheOwnerChose() {
        final class Owner {
            var fired = 0
        }
        let loop = EmbeddedEventLoop()
        var owner: Owner? = Owner()
        let survivor = Owner()
        weak var seenTimer: ConnectionTimer?
        weak var seenOwner: Owner?
        do {
            let timer = ConnectionTimer(eventLoop: loop) { [weak owner] in owner?.fired += 1 }
            let other = ConnectionTimer(eventLoop: loop) { survivor.fired += 1 }
            timer.arm(at: loop.now + .seconds(1))
            other.arm(at: loop.now + .seconds(1))
            seenTimer = timer
        }
        seenOwner = owner
        XCTAssertNotNil(seenTimer, "armed, it is the loop's until it fires")
        owner = nil
        XCTAssertNil(seenOwner, "the timer does not keep an owner that holds it weakly")
        loop.advanceTime(by: .seconds(1))
        XCTAssertEqual(survivor.fired, 1, "a timer whose owner let go of it still fires")
        XCTAssertNil(seenTimer, "and is freed once it has")
    }
}
