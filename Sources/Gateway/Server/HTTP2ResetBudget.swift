import NIOCore

/// How many streams an HTTP/2 client may reset, or make the server reset, before it is cut off.
///
/// The 2023 "rapid reset" attack (CVE-2023-44487) opens streams and cancels them at once, over
/// and over: each stream costs the server work the client never waits for, and the concurrency
/// limit never bites because nothing stays open. A browser resets a few streams now and then;
/// an attacker resets thousands a second. Counted per fixed window of time.
struct HTTP2ResetBudget {
    let maximum: Int
    let window: TimeAmount
    private var windowStart: NIODeadline?
    private var spent = 0

    init(maximum: Int = 200, window: TimeAmount = .seconds(30)) {
        self.maximum = maximum
        self.window = window
    }

    /// A reset at `now`. - Returns: false once more than `maximum` fell in one window.
    mutating func spend(at now: NIODeadline) -> Bool {
        if let start = windowStart, now - start < window {
            spent += 1
        } else {
            windowStart = now
            spent = 1
        }
        return spent <= maximum
    }
}
