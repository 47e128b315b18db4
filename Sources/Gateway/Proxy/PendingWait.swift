import NIOCore

/// A request admitted for a slot ahead of now (a limiter's `timeout`), until its time comes.
struct PendingWait {
    let task: Scheduled<Void>
    let room: WaitingRoom
    let held: Holdings

    /// The client left first: the forward never happens, and what the admission took (its
    /// reservations, its slots, its place among the waiting) goes back.
    func abandon() {
        task.cancel()
        held.giveBackAll()
        room.leave()
    }
}
