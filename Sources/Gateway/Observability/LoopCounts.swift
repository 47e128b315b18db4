/// One event loop's counters and histogram buckets, as plain integers: only that loop adds to
/// them, and /metrics reads them on it (`LoopResourcesRegistry.metricTotals`), so recording a
/// request costs no atomic instruction and no cache line another core's loop writes too. Each
/// series has the same place in every loop's counts (`MetricSeries`).
final class LoopCounts {
    /// Indexed by place; shorter than the process's number of places until this loop has
    /// counted at the last ones (places are numbered as configurations are loaded).
    private(set) var values: [Int] = []

    init() {}

    @inline(__always)
    func add(_ amount: Int, at place: Int) {
        if place >= values.count { grow(toHold: place) }
        values[place] &+= amount
    }

    private func grow(toHold place: Int) {
        values.append(contentsOf: repeatElement(0, count: place + 1 - values.count))
    }

    /// A place in counts summed over the loops; one no loop has counted at yet holds 0.
    static func total(at place: Int, in totals: [Int]) -> Int {
        place < totals.count ? totals[place] : 0
    }

    /// The loops' counts added place by place.
    static func sum(_ counts: [[Int]]) -> [Int] {
        var total = [Int](repeating: 0, count: counts.map(\.count).max() ?? 0)
        for loop in counts {
            for (place, value) in loop.enumerated() { total[place] &+= value }
        }
        return total
    }
}

/// A counter series counted per loop: its place in each loop's counts.
struct LoopCounter: Sendable, Equatable {
    let place: Int

    @inline(__always)
    func increment(in counts: LoopCounts, by amount: Int = 1) {
        counts.add(amount, at: place)
    }
}
