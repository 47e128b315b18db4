import NIOCore

/// One timer per connection for all of its deadlines (idle, stalled request body, upstream
/// response). It is re-armed only when a nearer deadline appears; a later deadline waits for the
/// timer to fire early and re-arm, so an ordinary request costs no timer operation at all.
public final class ConnectionTimer {
    private let eventLoop: any EventLoop
    private var scheduled: Scheduled<Void>?
    private var firesAt: NIODeadline?
    private let onFire: () -> Void

    public init(eventLoop: any EventLoop, onFire: @escaping () -> Void) {
        self.eventLoop = eventLoop
        self.onFire = onFire
    }

    /// Makes sure the timer fires no later than `deadline`.
    public func arm(at deadline: NIODeadline) {
        if let firesAt, firesAt <= deadline { return }
        scheduled?.cancel()
        firesAt = deadline
        // The loop holds the timer, strongly, until the task runs or is cancelled: a weak
        // reference would give the timer a side table, and its owner's calls to it, several per
        // request, would retain and release it through the runtime's slow path. `onFire` holds
        // the owner as the owner chose (weakly, or unowned by an owner that cancels as it goes).
        scheduled = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) {
            self.scheduled = nil
            self.firesAt = nil
            self.onFire()
        }
    }

    public func cancel() {
        scheduled?.cancel()
        scheduled = nil
        firesAt = nil
    }
}
