import NIOCore

/// What TickFlushes flushes: the handler at a channel's end that writes for it (its flush does
/// nothing once its channel is gone).
public protocol TickFlushable: AnyObject {
    func flushNow()
}

/// Flushes asked for while an event loop handles one batch of ready sockets, done together once
/// it has handled them all (a task the loop runs before it waits for sockets again).
///
/// A proxy's every flush is a write to a peer that is often asleep, and a write to a sleeping
/// peer wakes it: on a loaded loop, flushing each request as it is made wakes the upstream once
/// per exchange, each time to find one message. Flushed together, the messages of one batch
/// reach each peer back to back, so that a peer woken by the first finds the others when it
/// looks. Nothing waits longer than the rest of the batch it was made in. (What a caller needs
/// out before the batch ends, such as a response's end, it flushes itself.)
///
/// One per event loop, used only on it.
public final class TickFlushes {
    private let eventLoop: any EventLoop
    private var pending: [any TickFlushable] = []
    private var spare: [any TickFlushable] = []
    /// Made once: handed to the loop for every batch without a new closure each time. (It holds
    /// this object, which lives as long as its loop.)
    private lazy var flushAll: () -> Void = { self.flush() }

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Flushes `writer` once the loop has handled the sockets that are ready now.
    public func flushAtEndOfTick(_ writer: any TickFlushable) {
        // An exchange's upstream asks as its request starts, and again as the read that brought
        // more of the request's body ends: the same flush twice in a row.
        if let last = pending.last, last === writer { return }
        if pending.isEmpty {
            eventLoop.assumeIsolatedUnsafeUnchecked().execute(flushAll)
        }
        pending.append(writer)
    }

    private func flush() {
        // Swapped with a spare array, so that a flush that asks for another lands in a batch of
        // its own instead of the one being walked.
        swap(&pending, &spare)
        for writer in spare {
            writer.flushNow()
        }
        spare.removeAll(keepingCapacity: true)
    }
}
