import NIOCore

/// How many frames of one kind an HTTP/2 client may send, or make the server send, in a window
/// of time before it is cut off (ENHANCE_YOUR_CALM).
///
/// Floods that cost the server work the client never waits for: the 2023 "rapid reset" attack
/// (CVE-2023-44487) opens streams and cancels them, over and over, so the concurrency limit never
/// bites; SETTINGS and PING each demand an answer; PRIORITY, unknown frame kinds and empty DATA
/// frames are work for nothing. A browser sends a few of each now and then; an attacker sends
/// thousands a second. Counted per fixed window of time, per connection, at all times.
package struct HTTP2FrameBudget {
    package let maximum: Int
    package let window: TimeAmount
    private var windowStart: NIODeadline?
    private var spent = 0

    package init(maximum: Int, window: TimeAmount) {
        self.maximum = maximum
        self.window = window
    }

    /// Streams reset by either side.
    package static func resets() -> Self { Self(maximum: 200, window: .seconds(30)) }
    /// SETTINGS frames (each is acknowledged).
    package static func settings() -> Self { Self(maximum: 100, window: .seconds(10)) }
    /// PING frames (each is answered).
    package static func pings() -> Self { Self(maximum: 100, window: .seconds(10)) }
    /// PRIORITY frames and frames of unknown kinds.
    package static func noOps() -> Self { Self(maximum: 1_000, window: .seconds(10)) }
    /// DATA frames that carry nothing and do not end their stream.
    package static func emptyData() -> Self { Self(maximum: 1_000, window: .seconds(10)) }

    /// A frame at `now`. - Returns: false once more than `maximum` fell in one window.
    package mutating func spend(at now: NIODeadline) -> Bool {
        if let start = windowStart, now - start < window {
            spent += 1
        } else {
            windowStart = now
            spent = 1
        }
        return spent <= maximum
    }
}
