/// When to give an HTTP/2 peer back receive window (WINDOW_UPDATE), and how much.
///
/// The peer may send as many bytes as the window; each DATA frame shrinks it, each WINDOW_UPDATE
/// grows it. The state machine reports the window after every change. Bytes received but not yet
/// taken by the proxy (held while the upstream cannot take more) count as still in the window, so
/// they are given back only once taken: that is how a slow upstream slows a client that sends
/// fast. The window is refilled to its target once half of it is used, so small frames do not
/// each cost a WINDOW_UPDATE.
struct InboundWindow {
    let target: Int
    /// The window as last reported, plus what was given back since.
    private var window: Int
    /// Received, not yet taken.
    private var held = 0
    /// Once the peer has ended the stream, nothing more is given back.
    private var ended = false

    init(target: Int, initial: Int) {
        self.target = target
        self.window = initial
    }

    /// The state machine reports the window (after a DATA frame, or after our update).
    /// - Returns: the increment to send now, if any.
    mutating func reported(_ newWindow: Int) -> Int? {
        window = newWindow
        return increment()
    }

    /// The peer's initial window setting changed by `delta` for every stream (once it
    /// acknowledged our SETTINGS).
    mutating func initialSizeChanged(by delta: Int) -> Int? {
        window += delta
        return increment()
    }

    mutating func hold(_ bytes: Int) {
        held += bytes
    }

    /// Held bytes were taken. - Returns: the increment to send now, if any.
    mutating func taken(_ bytes: Int) -> Int? {
        held -= bytes
        return increment()
    }

    mutating func end() {
        ended = true
    }

    private mutating func increment() -> Int? {
        let open = window + held
        guard !ended, open <= target / 2 else { return nil }
        // A window is at most 2^31 - 1; it may have gone negative if the initial size shrank.
        let increment = min(target - open, Int(Int32.max))
        // Counted at once: until the state machine reports the new window, later calls must not
        // give the same bytes back again.
        window += increment
        return increment
    }
}
