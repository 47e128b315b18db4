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
    private weak var store: (any GroupDecider)?

    init(storeID: String, eventLoop: any EventLoop) {
        self.storeID = storeID
        self.eventLoop = eventLoop
    }

    /// Must be called on the batcher's loop.
    func submit(_ checks: [LimitCheck], via store: any GroupDecider) -> EventLoopFuture<[Decision]> {
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
            case .success(let outcomes):
                for (item, outcome) in zip(batch, outcomes) { item.promise.completeWith(outcome.mapError { $0 as any Error }) }
            case .failure(let error):
                for item in batch { item.promise.fail(error) }
            }
        }
    }
}

/// A store that decides several requests' groups of checks at once (one script call per node).
protocol GroupDecider: AnyObject {
    /// One outcome per group, in order.
    func decide(groups: [[LimitCheck]], on eventLoop: any EventLoop) -> EventLoopFuture<[Result<[Decision], StoreFailure>]>
}
