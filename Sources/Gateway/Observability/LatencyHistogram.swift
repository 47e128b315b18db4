import Prometheus

/// A latency histogram series counted per loop: one increment of the bucket a value falls in and
/// one of the sum, in the recording loop's counts. (Prometheus's own histogram takes a lock and
/// increments every bucket at or above the value.) Cumulative counts, `_sum` and `_count` are
/// worked out when /metrics is scraped, in the same text format as the registry's histograms.
struct LatencyHistogram: Sendable, Equatable {
    /// Upper bounds, from 100 us to 10 s.
    static let bounds: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    private static let boundNanoseconds: [Int64] = bounds.map { $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 }

    /// The places a series takes: a bucket per bound, one above them, then the sum.
    static let width = bounds.count + 2

    /// Its first place: values in (bound[i-1], bound[i]] count at `first + i`, values above the
    /// last bound at `first + bounds.count`; the sum of nanoseconds is at `first + bounds.count + 1`.
    let first: Int

    /// The index of the bucket a value falls in (the one past every bound for a value above them).
    static func bucket(nanoseconds: Int64) -> Int {
        let bounds = boundNanoseconds
        var index = 0
        while index < bounds.count && nanoseconds > bounds[index] { index += 1 }
        return index
    }

    func record(nanoseconds: Int64, in counts: LoopCounts) {
        record(nanoseconds: nanoseconds, bucket: Self.bucket(nanoseconds: nanoseconds), in: counts)
    }

    /// - Parameter bucket: `bucket(nanoseconds:)` of the value, found once for every histogram it goes in.
    @inline(__always)
    func record(nanoseconds: Int64, bucket: Int, in counts: LoopCounts) {
        counts.add(1, at: first + bucket)
        counts.add(Int(max(nanoseconds, 0)), at: first + Self.bounds.count + 1)
    }

    /// Values recorded, in counts summed over the loops.
    func count(in totals: [Int]) -> Int {
        (0...Self.bounds.count).reduce(0) { $0 + LoopCounts.total(at: first + $1, in: totals) }
    }

    /// The `_bucket`, `_sum` and `_count` lines of the series named `name` with `labels`
    /// (rendered), from counts summed over the loops.
    func emit(name: String, labels: String, totals: [Int], into text: inout String) {
        var cumulative = 0
        for (index, bound) in Self.bounds.enumerated() {
            cumulative += LoopCounts.total(at: first + index, in: totals)
            text += "\(name)_bucket{\(labels),le=\"\(bound.bucketRepresentation)\"} \(cumulative)\n"
        }
        cumulative += LoopCounts.total(at: first + Self.bounds.count, in: totals)
        text += "\(name)_bucket{\(labels),le=\"+Inf\"} \(cumulative)\n"
        let sum = Duration.nanoseconds(LoopCounts.total(at: first + Self.bounds.count + 1, in: totals))
        text += "\(name)_sum{\(labels)} \(sum.bucketRepresentation)\n"
        text += "\(name)_count{\(labels)} \(cumulative)\n"
    }
}
