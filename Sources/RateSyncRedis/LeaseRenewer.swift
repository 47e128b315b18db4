import NIOCore
import RateSync

/// The `max_concurrent` slots one event loop's requests hold in a shared store, each on a
/// lease renewed every third of its length while the request lasts, so that only the slots of a
/// gateway that died run out. Used only on its loop.
final class LeaseRenewer {
    struct Held {
        let counterKey: String
        let leasesKey: String
        let seconds: Double
        var renewedAt: NIODeadline
    }

    private let eventLoop: any EventLoop
    /// Sends the renewals; set once the store is built.
    weak var owner: (any LeaseOwner)?
    private var held: [String: Held] = [:]
    private var timer: RepeatedTask?

    static let tick: TimeAmount = .milliseconds(500)

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    var count: Int { held.count }

    func hold(_ holder: String, counterKey: String, leasesKey: String, seconds: Double) {
        held[holder] = Held(counterKey: counterKey, leasesKey: leasesKey, seconds: seconds, renewedAt: .now())
        if timer == nil {
            let bound = NIOLoopBound(self, eventLoop: eventLoop)
            timer = eventLoop.scheduleRepeatedTask(initialDelay: Self.tick, delay: Self.tick) { _ in
                bound.value.renewDue()
            }
        }
    }

    func drop(_ holder: String) {
        held[holder] = nil
    }

    func stop() {
        timer?.cancel()
        timer = nil
        held = [:]
    }

    private func renewDue() {
        let now = NIODeadline.now()
        for (holder, entry) in held where now - entry.renewedAt >= .nanoseconds(Int64(entry.seconds / 3 * 1e9)) {
            held[holder]?.renewedAt = now
            owner?.renew(entry, holder: holder, on: eventLoop)
        }
    }
}

/// A store that can extend a lease on its own connection of a loop.
protocol LeaseOwner: AnyObject {
    func renew(_ held: LeaseRenewer.Held, holder: String, on eventLoop: any EventLoop)
}

extension LimitScript {
    /// A check's slot counter and its leases, as the limit script names them.
    static func slotKeys(_ check: LimitCheck, keyPrefix: String, hashTagged: Bool) -> (counter: String, leases: String) {
        (
            key(check, keyPrefix: keyPrefix, hashTagged: hashTagged, suffix: ":concurrent"),
            key(check, keyPrefix: keyPrefix, hashTagged: hashTagged, suffix: ":leases")
        )
    }

    /// Marks the slots a call's admitted groups took with their leases (as the script took them:
    /// every enforced check with a cap of an admitted group, and its shadows that admitted), and
    /// has `renewer` hold each lease (its keys in the store's layout) while its request lasts.
    static func attachLeases(
        _ outcomes: [Result<[Decision], StoreFailure>],
        groups: [[LimitCheck]],
        token: String,
        keyPrefix: String,
        hashTagged: Bool,
        heldBy renewer: LeaseRenewer
    ) -> [Result<[Decision], StoreFailure>] {
        // The usual call holds no capped limiter: nothing to mark, no new array.
        guard groups.contains(where: { $0.contains { $0.limiter.maxConcurrent != nil } }) else { return outcomes }
        return zip(groups, outcomes).enumerated().map { groupIndex, pair in
            let (group, outcome) = pair
            guard case .success(var decisions) = outcome,
                group.contains(where: { $0.limiter.maxConcurrent != nil }),
                zip(group, decisions).allSatisfy({ $0.shadow || $1.allowed })
            else { return outcome }
            for (checkIndex, check) in group.enumerated() where check.limiter.maxConcurrent != nil && decisions[checkIndex].allowed {
                let holder = holder(token: token, group: groupIndex + 1, check: checkIndex + 1)
                decisions[checkIndex].lease = holder
                let keys = slotKeys(check, keyPrefix: keyPrefix, hashTagged: hashTagged)
                renewer.hold(holder, counterKey: keys.counter, leasesKey: keys.leases, seconds: check.limiter.leaseSeconds)
            }
            return .success(decisions)
        }
    }
}
