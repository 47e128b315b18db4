/// A request stream's state as RFC 9113, 5.1 names it, on the server's side. The client's HEADERS
/// open it (idle streams are not kept: a frame for one is the connection's business), with
/// END_STREAM already half-closed (remote); each side's END_STREAM half-closes its side, both
/// close it, and RST_STREAM either way closes it at once.
///
/// A value whose events say what follows, so the rules are tested without a connection
/// (HTTP2StreamStateTests); HTTP2ClientStream performs what they say.
package enum HTTP2StreamState: Equatable {
    case open
    /// The client has ended its request; the response goes on.
    case halfClosedRemote
    /// The response has ended; the request goes on.
    case halfClosedLocal
    case closed

    /// What a frame from the client does to the stream.
    package enum Inbound: Equatable {
        /// Taken; `closes` when it ends the stream's last open side.
        case accepted(closes: Bool)
        /// The client had ended its side (RFC 9113, 5.1: a stream error, STREAM_CLOSED).
        case streamClosed
    }

    /// The state a client's HEADERS opens.
    package init(requestEnded: Bool) {
        self = requestEnded ? .halfClosedRemote : .open
    }

    package var isClosed: Bool { self == .closed }
    package var remoteEnded: Bool { self == .halfClosedRemote || self == .closed }
    package var localEnded: Bool { self == .halfClosedLocal || self == .closed }

    /// DATA or trailers from the client, ending its side or not.
    package mutating func receive(endStream: Bool) -> Inbound {
        switch self {
        case .open:
            if endStream { self = .halfClosedRemote }
            return .accepted(closes: false)
        case .halfClosedLocal:
            if endStream { self = .closed }
            return .accepted(closes: endStream)
        case .halfClosedRemote, .closed:
            return .streamClosed
        }
    }

    /// The response's END_STREAM. - Returns: whether the stream is now closed.
    package mutating func responseEnd() -> Bool {
        switch self {
        case .open:
            self = .halfClosedLocal
            return false
        case .halfClosedRemote:
            self = .closed
            return true
        case .halfClosedLocal, .closed:
            return false
        }
    }

    /// RST_STREAM sent or received, or the connection gone. - Returns: whether the stream was
    /// still open (and so has something to give back).
    package mutating func reset() -> Bool {
        guard self != .closed else { return false }
        self = .closed
        return true
    }
}
