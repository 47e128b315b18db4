import XCTest

@testable import HTTP2Server

/// RFC 9113, 5.1, from the server's side of a request stream.
final class HTTP2StreamStateTests: XCTestCase {
    func testHeadersOpenTheStreamOrHalfCloseItWithTheirEnd() {
        XCTAssertEqual(HTTP2StreamState(requestEnded: false), .open)
        XCTAssertEqual(HTTP2StreamState(requestEnded: true), .halfClosedRemote)
    }

    func testTheRequestEndsBeforeTheResponse() {
        var state = HTTP2StreamState(requestEnded: false)
        XCTAssertEqual(state.receive(endStream: false), .accepted(closes: false))
        XCTAssertEqual(state.receive(endStream: true), .accepted(closes: false))
        XCTAssertEqual(state, .halfClosedRemote)
        XCTAssertTrue(state.remoteEnded)
        XCTAssertFalse(state.localEnded)
        XCTAssertTrue(state.responseEnd(), "both sides ended: closed")
        XCTAssertTrue(state.isClosed)
    }

    func testTheResponseEndsBeforeTheRequest() {
        var state = HTTP2StreamState(requestEnded: false)
        XCTAssertFalse(state.responseEnd())
        XCTAssertEqual(state, .halfClosedLocal)
        XCTAssertEqual(state.receive(endStream: false), .accepted(closes: false), "the body may go on")
        XCTAssertEqual(state.receive(endStream: true), .accepted(closes: true))
        XCTAssertTrue(state.isClosed)
    }

    func testFramesAfterTheClientsEndAreStreamClosed() {
        var ended = HTTP2StreamState(requestEnded: true)
        XCTAssertEqual(ended.receive(endStream: false), .streamClosed)
        XCTAssertEqual(ended.receive(endStream: true), .streamClosed)
        XCTAssertEqual(ended, .halfClosedRemote, "the error changes nothing: the stream's reset does")

        var closed = HTTP2StreamState.closed
        XCTAssertEqual(closed.receive(endStream: false), .streamClosed)
    }

    func testAResetClosesWhateverTheStateAndOnlyOnce() {
        for start in [HTTP2StreamState.open, .halfClosedRemote, .halfClosedLocal] {
            var state = start
            XCTAssertTrue(state.reset(), "\(start)")
            XCTAssertTrue(state.isClosed)
            XCTAssertFalse(state.reset(), "already closed")
        }
    }

    func testASecondResponseEndChangesNothing() {
        var state = HTTP2StreamState.halfClosedLocal
        XCTAssertFalse(state.responseEnd())
        XCTAssertEqual(state, .halfClosedLocal)
        var closed = HTTP2StreamState.closed
        XCTAssertFalse(closed.responseEnd())
    }
}
