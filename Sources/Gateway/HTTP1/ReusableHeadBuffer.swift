import NIOCore

/// The memory a codec writes its heads into, used again for the next head once the channel has
/// written the last one: a head per request then costs no allocation.
///
/// The buffer handed to the channel stays referenced here. It is never written over while the
/// channel still holds it: `take` clears it, and clearing a buffer that is not uniquely
/// referenced gives it fresh storage.
struct ReusableHeadBuffer {
    /// Storage grown past this (a head joined by a large body part) is let go, not kept for
    /// every idle connection.
    static let largestKept = 4096

    private var kept: ByteBuffer?

    /// An empty buffer: the kept one when there is one. (The allocator is asked for only
    /// without one: reaching a channel's allocator costs a call through its pipeline.)
    mutating func take(_ allocator: @autoclosure () -> ByteBufferAllocator) -> ByteBuffer {
        guard var buffer = kept else { return allocator().buffer(capacity: 1024) }
        kept = nil
        buffer.clear()
        return buffer
    }

    /// Keeps the storage of a buffer just handed to the channel, for the next head.
    mutating func keep(_ written: ByteBuffer) {
        kept = written.capacity <= Self.largestKept ? written : nil
    }
}
