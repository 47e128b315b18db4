import NIOCore

/// Small writes gathered into one buffer until they go to the channel together: many
/// producers' writes in one event-loop tick cost one TLS record and one write, not one each.
/// What WriteCoalescingHandler gathers (Redis commands) and what an HTTP/2 connection gathers
/// (its streams' frames).
public struct WriteBatch {
    private var buffer: ByteBuffer?
    /// Completed once the writes appended with them are out (rare: a last write before a close).
    private var promises: [EventLoopPromise<Void>] = []

    public init() {}

    /// Appends what `write` writes.
    public mutating func append(allocator: ByteBufferAllocator, promise: EventLoopPromise<Void>? = nil, _ write: (inout ByteBuffer) -> Void) {
        var gathered = buffer.take() ?? allocator.buffer(capacity: 4096)
        write(&gathered)
        buffer = gathered
        if let promise { promises.append(promise) }
    }

    /// The gathered bytes, and the promise to write them with; the batch is empty after it.
    public mutating func take() -> (bytes: ByteBuffer, promise: EventLoopPromise<Void>?)? {
        guard let bytes = buffer.take() else { return nil }
        defer { promises.removeAll() }
        guard let first = promises.first else { return (bytes, nil) }
        for other in promises.dropFirst() { first.futureResult.cascade(to: other) }
        return (bytes, first)
    }
}
