@testable import HTTP2Server
import XCTest

final class InboundWindowTests: XCTestCase {
    func testTheWindowIsRefilledToItsTargetOnceHalfIsUsed() {
        var window = InboundWindow(target: 1000, initial: 1000)
        XCTAssertTrue(window.received(400))
        XCTAssertNil(window.increment(), "less than half used")
        XCTAssertTrue(window.received(100))
        XCTAssertEqual(window.increment(), 500, "half used: refilled to the target")
        XCTAssertEqual(window.window, 1000, "the increment counts at once")
        XCTAssertNil(window.increment(), "and is not given twice")
    }

    func testHeldBytesAreGivenBackOnlyOnceTaken() {
        var window = InboundWindow(target: 1000, initial: 1000)
        XCTAssertTrue(window.received(700))
        window.hold(700)
        XCTAssertNil(window.increment(), "700 bytes received but not taken: nothing to give back")
        window.taken(100)
        XCTAssertNil(window.increment())
        window.taken(400)
        XCTAssertEqual(window.increment(), 500, "half taken: the window (300) and what is still held (200) refilled to 1000")
    }

    func testTheConnectionsSmallInitialWindowGrowsToTheTargetAtOnce() {
        var window = InboundWindow(target: 1 << 20, initial: 65_535)
        XCTAssertEqual(window.increment(), (1 << 20) - 65_535)
    }

    func testSendingBeyondTheWindowIsAFlowControlError() {
        var window = InboundWindow(target: 1000, initial: 1000)
        XCTAssertTrue(window.received(1000))
        XCTAssertFalse(window.received(1), "one byte over the window")
    }

    func testNothingIsGivenBackAfterThePeerEndedTheStream() {
        var window = InboundWindow(target: 1000, initial: 1000)
        XCTAssertTrue(window.received(1000))
        window.end()
        XCTAssertNil(window.increment())
    }
}
