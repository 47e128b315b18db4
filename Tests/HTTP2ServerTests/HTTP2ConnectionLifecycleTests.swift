import NIOCore
import XCTest

@testable import HTTP2Server

/// A connection's life, on a clock of the test's own.
final class HTTP2ConnectionLifecycleTests: XCTestCase {
    private let start = NIODeadline.uptimeNanoseconds(1_000_000_000)
    private func at(_ seconds: Int64) -> NIODeadline { start + .seconds(seconds) }
    private func lifecycle() -> HTTP2ConnectionLifecycle {
        HTTP2ConnectionLifecycle(idleTimeout: .seconds(60), graceTime: .seconds(30), sendTimeout: .seconds(10))
    }

    func testAConnectionWithNoStreamClosesOnceIdleForTheTimeout() {
        var life = lifecycle()
        XCTAssertEqual(life.opened(now: at(0)), .closeWhenIdleAt(at(60)))
        XCTAssertEqual(life.idleDeadlineReached(now: at(60), highestStream: 0, streamsOpen: false), .goAway(lastStream: 0, code: .noError, close: true))
        XCTAssertTrue(life.isClosed)
    }

    func testAStreamStopsTheIdleClockAndItsEndStartsItAgain() {
        var life = lifecycle()
        _ = life.opened(now: at(0))
        life.streamOpened()
        XCTAssertEqual(life.idleDeadlineReached(now: at(60), highestStream: 1, streamsOpen: true), .none)
        XCTAssertEqual(life.lastStreamClosed(now: at(50)), .closeWhenIdleAt(at(110)))
        XCTAssertEqual(life.idleDeadlineReached(now: at(60), highestStream: 1, streamsOpen: false), .closeWhenIdleAt(at(110)), "an early timer re-arms")
        XCTAssertEqual(life.idleDeadlineReached(now: at(110), highestStream: 1, streamsOpen: false), .goAway(lastStream: 1, code: .noError, close: true))
    }

    func testADrainAnnouncesTheEndThenNamesTheLastStreamOnceThePingReturns() {
        var life = lifecycle()
        _ = life.opened(now: at(0))
        life.streamOpened()
        XCTAssertEqual(life.drain(now: at(5)), .announceDrain(closeBy: at(35)))
        XCTAssertEqual(life.drain(now: at(6)), .none, "once")
        XCTAssertTrue(life.serves(99), "streams on their way before the client saw GOAWAY are served")
        XCTAssertEqual(life.drainPingAnswered(highestStream: 3, streamsOpen: true), .goAway(lastStream: 3, code: .noError, close: false))
        XCTAssertTrue(life.serves(3))
        XCTAssertFalse(life.serves(5))
        XCTAssertEqual(life.drainPingAnswered(highestStream: 3, streamsOpen: true), .none, "a second answer changes nothing")
        XCTAssertEqual(life.lastStreamClosed(now: at(8)), .close)
        XCTAssertTrue(life.isClosed)
    }

    func testADrainWithNothingOpenClosesWithTheSecondGoAway() {
        var life = lifecycle()
        _ = life.opened(now: at(0))
        _ = life.drain(now: at(1))
        XCTAssertEqual(life.drainPingAnswered(highestStream: 0, streamsOpen: false), .goAway(lastStream: 0, code: .noError, close: true))
        XCTAssertTrue(life.isClosed)
    }

    func testTheGraceTimeEndsADrainWhateverIsOpen() {
        var life = lifecycle()
        _ = life.drain(now: at(0))
        XCTAssertEqual(life.close(), .close)
        XCTAssertEqual(life.close(), .none)
    }

    func testAClientThatGoesAwayIsLeftOnceItsStreamsAreDone() {
        var life = lifecycle()
        _ = life.opened(now: at(0))
        life.streamOpened()
        XCTAssertEqual(life.peerGoingAway(streamsOpen: true), .none)
        XCTAssertEqual(life.lastStreamClosed(now: at(2)), .close)

        var idle = lifecycle()
        _ = idle.opened(now: at(0))
        XCTAssertEqual(idle.peerGoingAway(streamsOpen: false), .close)
    }

    func testASocketThatTakesNothingForTheSendTimeoutClosesTheConnection() {
        var life = lifecycle()
        _ = life.opened(now: at(0))
        life.streamOpened()
        XCTAssertEqual(life.socketWritabilityChanged(writable: false, now: at(2)), at(12))
        XCTAssertNil(life.socketWritabilityChanged(writable: false, now: at(3)), "one stall, one deadline")
        XCTAssertEqual(life.stallDeadlineReached(now: at(11)), .none, "an early timer closes nothing")
        XCTAssertEqual(life.stallDeadlineReached(now: at(12)), .close)
        XCTAssertTrue(life.isClosed)
        XCTAssertNil(life.socketWritabilityChanged(writable: false, now: at(13)), "a closed connection times nothing")
    }

    func testASocketThatTakesBytesAgainStartsItsNextStallAfresh() {
        var life = lifecycle()
        _ = life.opened(now: at(0))
        XCTAssertEqual(life.socketWritabilityChanged(writable: false, now: at(2)), at(12))
        XCTAssertNil(life.socketWritabilityChanged(writable: true, now: at(8)))
        XCTAssertEqual(life.stallDeadlineReached(now: at(12)), .none, "it took bytes in between")
        XCTAssertEqual(life.socketWritabilityChanged(writable: false, now: at(9)), at(19))
        XCTAssertEqual(life.stallDeadlineReached(now: at(18)), .none)
        XCTAssertEqual(life.stallDeadlineReached(now: at(19)), .close)
    }

    func testAConnectionErrorSendsItsCodeOnceAndCloses() {
        var life = lifecycle()
        _ = life.opened(now: at(0))
        XCTAssertEqual(life.connectionError(.protocolError, highestStream: 7), .goAway(lastStream: 7, code: .protocolError, close: true))
        XCTAssertEqual(life.connectionError(.enhanceYourCalm, highestStream: 9), .none)
        XCTAssertEqual(life.drain(now: at(1)), .none)
        XCTAssertEqual(life.lastStreamClosed(now: at(1)), .none)
    }
}
