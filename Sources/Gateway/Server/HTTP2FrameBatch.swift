import NIOCore

/// The frames an HTTP/2 connection writes between two writes to its channel, gathered in one
/// buffer: the frames of many streams in one event-loop tick cost one TLS record and one write,
/// not one each.
struct HTTP2FrameBatch {
    private var buffer: ByteBuffer?
    /// Completed once the frames appended with them are written (rare: a stream's last frame
    /// before a close).
    private var promises: [EventLoopPromise<Void>] = []

    /// Appends the frames `write` writes.
    mutating func append(allocator: ByteBufferAllocator, promise: EventLoopPromise<Void>? = nil, _ write: (inout ByteBuffer) -> Void) {
        var frames = buffer.take() ?? allocator.buffer(capacity: 4096)
        write(&frames)
        buffer = frames
        if let promise { promises.append(promise) }
    }

    /// The gathered frames, and the promise to write them with; the batch is empty after it.
    mutating func take() -> (frames: ByteBuffer, promise: EventLoopPromise<Void>?)? {
        guard let frames = buffer.take(), frames.readableBytes > 0 else { return nil }
        defer { promises.removeAll() }
        guard let first = promises.first else { return (frames, nil) }
        for other in promises.dropFirst() { first.futureResult.cascade(to: other) }
        return (frames, first)
    }
}
