@testable import Gateway
import XCTest

final class InboundWindowTests: XCTestCase {
    func testTheWindowIsRefilledToItsTargetOnceHalfIsUsed() {
        var window = InboundWindow(target: 1000, initial: 1000)
        XCTAssertNil(window.reported(600), "less than half used")
        XCTAssertEqual(window.reported(500), 500, "half used: refilled to the target")
        XCTAssertNil(window.reported(400 + 500), "the increment was counted at once, before the state machine reported it")
    }

    func testHeldBytesAreGivenBackOnlyOnceTaken() {
        var window = InboundWindow(target: 1000, initial: 1000)
        window.hold(700)
        XCTAssertNil(window.reported(300), "700 bytes received but not taken: nothing to give back")
        XCTAssertNil(window.taken(100))
        XCTAssertEqual(window.taken(400), 500, "half taken: the window (300) and what is still held (200) refilled to 1000")
    }

    func testTheConnectionsSmallInitialWindowGrowsToTheTargetAtFirstReport() {
        var window = InboundWindow(target: 1 << 20, initial: 65_535)
        XCTAssertEqual(window.reported(65_535 - 16_384), (1 << 20) - 65_535 + 16_384)
    }

    func testAnInitialSizeChangeMovesTheWindow() {
        var window = InboundWindow(target: 1000, initial: 1000)
        XCTAssertEqual(window.initialSizeChanged(by: -600), 600)
    }

    func testNothingIsGivenBackAfterThePeerEndedTheStream() {
        var window = InboundWindow(target: 1000, initial: 1000)
        window.end()
        XCTAssertNil(window.reported(0))
    }
}
