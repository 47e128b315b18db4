import NIOCore

/// An HTTP/2 connection's life on the server's side: open, then draining (a graceful end in two
/// GOAWAYs, RFC 9113, 6.8), then closed; idle while it has no stream, closed once idle for too
/// long; closed once its socket has taken no bytes for the send timeout; closed at once on a
/// connection error. A value whose events say what to do (the handler
/// writes the frames, arms the timer, closes the channel), tested on its own clock
/// (HTTP2ConnectionLifecycleTests).
package struct HTTP2ConnectionLifecycle {
    package enum State: Equatable {
        case open
        /// GOAWAY sent: streams above `lastStream` are not served; the connection closes once the
        /// others finish. Nil while a drain's first GOAWAY (which announces the end but accepts
        /// streams already on their way) waits for its PING's answer.
        case draining(lastStream: UInt32?)
        case closed
    }

    package enum Action: Equatable {
        case none
        /// Send GOAWAY with the highest stream id and a PING, and close at `closeBy` whatever is
        /// still open.
        case announceDrain(closeBy: NIODeadline)
        /// Send GOAWAY naming `lastStream` with `code`; then close if `close`.
        case goAway(lastStream: UInt32, code: HTTP2Wire.ErrorCode, close: Bool)
        case close
        /// No stream is open: close at `deadline` unless one opens by then.
        case closeWhenIdleAt(NIODeadline)
    }

    package let idleTimeout: TimeAmount
    package let graceTime: TimeAmount
    package let sendTimeout: TimeAmount
    package private(set) var state = State.open
    private var peerWentAway = false
    /// Since when the connection has had no stream (nil while it has some).
    private var idleSince: NIODeadline?
    /// Since when the socket has taken no bytes (nil while it takes them).
    private var stalledSince: NIODeadline?

    package init(idleTimeout: TimeAmount, graceTime: TimeAmount, sendTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
        self.graceTime = graceTime
        self.sendTimeout = sendTimeout
    }

    package var isClosed: Bool { state == .closed }

    /// Whether a client's new stream `id` is served (the second GOAWAY named the last one).
    package func serves(_ id: UInt32) -> Bool {
        if case .draining(let lastStream?) = state { return id <= lastStream }
        return true
    }

    /// The connection starts with no stream.
    package mutating func opened(now: NIODeadline) -> Action {
        idleSince = now
        return .closeWhenIdleAt(now + idleTimeout)
    }

    package mutating func streamOpened() {
        idleSince = nil
    }

    /// The last open stream is over.
    package mutating func lastStreamClosed(now: NIODeadline) -> Action {
        switch state {
        case .draining(_?):
            return close()
        case .open where peerWentAway, .draining(nil) where peerWentAway:
            return close()
        case .open:
            idleSince = now
            return .closeWhenIdleAt(now + idleTimeout)
        case .draining(nil), .closed:
            return .none
        }
    }

    /// The idle deadline came. - Parameter streamsOpen: whether any stream is open now.
    package mutating func idleDeadlineReached(now: NIODeadline, highestStream: UInt32, streamsOpen: Bool) -> Action {
        guard state == .open, !streamsOpen, let idleSince else { return .none }
        let due = idleSince + idleTimeout
        guard now >= due else { return .closeWhenIdleAt(due) }
        state = .closed
        return .goAway(lastStream: highestStream, code: .noError, close: true)
    }

    /// The socket stopped taking bytes (`writable` false: its channel holds more than it may
    /// queue), or takes them again.
    /// - Returns: when to look again, as a stall begins; nil otherwise.
    package mutating func socketWritabilityChanged(writable: Bool, now: NIODeadline) -> NIODeadline? {
        guard !writable else {
            stalledSince = nil
            return nil
        }
        guard state != .closed, stalledSince == nil else { return nil }
        stalledSince = now
        return now + sendTimeout
    }

    /// The stall's deadline came. A client that has taken nothing for the whole send timeout is
    /// gone or will not read: the connection closes, and its streams give back what they hold
    /// (nothing more can reach it, a GOAWAY included).
    package mutating func stallDeadlineReached(now: NIODeadline) -> Action {
        guard let stalledSince, now >= stalledSince + sendTimeout else { return .none }
        return close()
    }

    /// The process is shutting down (SIGTERM), or the connection opened while it was.
    package mutating func drain(now: NIODeadline) -> Action {
        guard state == .open else { return .none }
        state = .draining(lastStream: nil)
        return .announceDrain(closeBy: now + graceTime)
    }

    /// The client answered the drain's PING: the streams it opened before seeing the first GOAWAY
    /// have arrived; the second names the last one served.
    package mutating func drainPingAnswered(highestStream: UInt32, streamsOpen: Bool) -> Action {
        guard state == .draining(lastStream: nil) else { return .none }
        state = streamsOpen ? .draining(lastStream: highestStream) : .closed
        return .goAway(lastStream: highestStream, code: .noError, close: !streamsOpen)
    }

    /// The client sent GOAWAY: it opens no more streams; the connection closes once those open are
    /// done.
    package mutating func peerGoingAway(streamsOpen: Bool) -> Action {
        peerWentAway = true
        return streamsOpen || state == .closed ? .none : close()
    }

    /// A connection error (RFC 9113, 5.4.1): GOAWAY with its code, then the end.
    package mutating func connectionError(_ code: HTTP2Wire.ErrorCode, highestStream: UInt32) -> Action {
        guard state != .closed else { return .none }
        state = .closed
        return .goAway(lastStream: highestStream, code: code, close: true)
    }

    /// The drain's grace time is over, or the channel closed.
    package mutating func close() -> Action {
        guard state != .closed else { return .none }
        state = .closed
        return .close
    }
}
