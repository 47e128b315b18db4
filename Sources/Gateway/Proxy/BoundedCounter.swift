import Atomics

/// A count shared by every event loop that never goes past its bound: places taken and given
/// back, without a lock.
final class BoundedCounter: Sendable {
    let bound: Int
    private let count = ManagedAtomic<Int>(0)

    init(bound: Int) {
        self.bound = bound
    }

    /// Takes a place; false when all are taken.
    func take() -> Bool {
        var current = count.load(ordering: .relaxed)
        while current < bound {
            let (exchanged, original) = count.compareExchange(expected: current, desired: current + 1, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }

    func giveBack() {
        count.wrappingDecrement(ordering: .relaxed)
    }

    var taken: Int { count.load(ordering: .relaxed) }
}
