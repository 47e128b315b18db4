import NIOCore

extension TimeAmount {
    /// A duration given in (possibly fractional) seconds, as the config files give them.
    public init(seconds: Double) {
        self = .nanoseconds(Int64(seconds * 1e9))
    }
}
