/// A receive window of an HTTP/2 stream or connection: what the peer may still send, and when
/// to give it back more (WINDOW_UPDATE), and how much.
///
/// Each DATA frame shrinks the window, each WINDOW_UPDATE grows it. Bytes received but not yet
/// taken by the proxy (held while the upstream cannot take more) count as still in the window,
/// so they are given back only once taken: that is how a slow upstream slows a client that
/// sends fast. The window is refilled to its target once half of it is used, so small frames do
/// not each cost a WINDOW_UPDATE.
package struct InboundWindow {
    package let target: Int
    /// What the peer may still send.
    package private(set) var window: Int
    /// Received, not yet taken.
    private var held = 0
    /// Once the peer has ended the stream, nothing more is given back.
    private var ended = false

    package init(target: Int, initial: Int) {
        self.target = target
        self.window = initial
    }

    /// A DATA frame of `bytes` (padding included) arrived.
    /// - Returns: false when the peer sent more than its window allowed (FLOW_CONTROL_ERROR).
    package mutating func received(_ bytes: Int) -> Bool {
        window -= bytes
        return window >= 0
    }

    package mutating func hold(_ bytes: Int) {
        held += bytes
    }

    /// Held bytes were taken.
    package mutating func taken(_ bytes: Int) {
        held -= bytes
    }

    package mutating func end() {
        ended = true
    }

    /// The increment to send now, if any; counted as given at once.
    package mutating func increment() -> Int? {
        let open = window + held
        guard !ended, open <= target / 2 else { return nil }
        let increment = min(target - open, HTTP2Wire.maxWindow - window)
        guard increment > 0 else { return nil }
        window += increment
        return increment
    }
}
