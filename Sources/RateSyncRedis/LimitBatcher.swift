import NIOCore
import RateSync

/// Gathers the limit checks that requests of one event loop issue during one tick into a single
/// script call, each request's checks an all-or-nothing group of its own. Redis then parses,
/// dispatches and enters Lua once per tick instead of once per request (the same semantics as
/// the calls one after another: groups are decided in order).
final class LimitBatcher {
    private struct Pending {
        let checks: [LimitCheck]
        let promise: EventLoopPromise<[Decision]>
    }

    private let eventLoop: any EventLoop
    private let storeID: String
    private var pending: [Pending] = []
    /// Set by each submit; weak, since the store owns this batcher.
    private weak var store: RedisStore?

    init(storeID: String, eventLoop: any EventLoop) {
        self.storeID = storeID
        self.eventLoop = eventLoop
    }

    /// Must be called on the batcher's loop.
    func submit(_ checks: [LimitCheck], via store: RedisStore) -> EventLoopFuture<[Decision]> {
        self.store = store
        let promise = eventLoop.makePromise(of: [Decision].self)
        if pending.isEmpty {
            eventLoop.assumeIsolated().execute { self.flush() }
        }
        pending.append(Pending(checks: checks, promise: promise))
        return promise.futureResult
    }

    private func flush() {
        let batch = pending
        pending = []
        guard let store, !batch.isEmpty else {
            for item in batch { item.promise.fail(StoreFailure(storeID: storeID, reason: "store stopped")) }
            return
        }
        store.decide(groups: batch.map(\.checks), on: eventLoop).whenComplete { result in
            switch result {
            case .success(let decisions):
                var offset = 0
                for item in batch {
                    let next = offset + item.checks.count
                    let group = decisions[offset..<next].compactMap { $0 }
                    if group.count == item.checks.count {
                        item.promise.succeed(group)
                    } else {
                        // This request's own keys failed, not the store: its fail policies
                        // answer, and the breaker does not count it.
                        item.promise.fail(
                            StoreFailure(
                                storeID: self.storeID,
                                reason: "a limiter key holds a value of another type or a corrupt one",
                                affectsHealth: false
                            )
                        )
                    }
                    offset = next
                }
            case .failure(let error):
                for item in batch { item.promise.fail(error) }
            }
        }
    }
}
