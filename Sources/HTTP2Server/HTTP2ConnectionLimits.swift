import NIOCore

/// What one HTTP/2 connection may make the server hold and how long it may idle.
package struct HTTP2ConnectionLimits {
    package var maxConcurrentStreams: Int
    package var maxHeaderListSize: Int
    /// Every stream's receive window is kept near this.
    package var windowTarget: Int
    /// The connection's receive window: what one connection's streams can make the gateway
    /// hold at most, all together, while their proxies cannot take it.
    package var connectionWindowTarget: Int
    package var idleTimeout: TimeAmount
    /// How long open streams get to finish once the connection is draining.
    package var graceTime: TimeAmount
    /// A socket that takes no bytes for this long is closed, its streams with it.
    package var sendTimeout: TimeAmount

    package init(
        maxConcurrentStreams: Int,
        maxHeaderListSize: Int,
        windowTarget: Int,
        connectionWindowTarget: Int,
        idleTimeout: TimeAmount,
        graceTime: TimeAmount,
        sendTimeout: TimeAmount
    ) {
        self.maxConcurrentStreams = maxConcurrentStreams
        self.maxHeaderListSize = maxHeaderListSize
        self.windowTarget = windowTarget
        self.connectionWindowTarget = connectionWindowTarget
        self.idleTimeout = idleTimeout
        self.graceTime = graceTime
        self.sendTimeout = sendTimeout
    }
}
