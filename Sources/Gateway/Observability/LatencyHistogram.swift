import Atomics
import NIOConcurrencyHelpers
import Prometheus

/// A latency histogram recorded on the request path without a lock: one relaxed increment of
/// the bucket the value falls in, and one of the sum. Prometheus's own histogram takes a lock
/// and increments every bucket at or above the value, which on a proxied request cost more than
/// deciding its rate limit. Cumulative counts, `_sum` and `_count` are worked out when /metrics
/// is scraped, in the same text format as the registry's histograms.
public final class LatencyHistogram: Sendable {
    /// Upper bounds, from 100 us to 10 s.
    public static let bounds: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]
    private static let boundNanoseconds: [Int64] = bounds.map { $0.components.seconds * 1_000_000_000 + $0.components.attoseconds / 1_000_000_000 }

    let name: String
    /// `upstream="app",target="10.0.0.5:8080"`, escaped once.
    let renderedLabels: String
    /// Values in (bound[i-1], bound[i]] at i; above the last bound at `bounds.count`.
    private let counts: [ManagedAtomic<Int>]
    private let sumNanoseconds = ManagedAtomic<Int>(0)

    init(name: String, labels: [(String, String)]) {
        self.name = name
        self.renderedLabels = labels.map { "\($0.0)=\"\(Self.escaped($0.1))\"" }.joined(separator: ",")
        self.counts = (0...Self.bounds.count).map { _ in ManagedAtomic<Int>(0) }
    }

    /// The index of the bucket a value falls in (the one past every bound for a value above them).
    static func bucket(nanoseconds: Int64) -> Int {
        let bounds = boundNanoseconds
        var index = 0
        while index < bounds.count && nanoseconds > bounds[index] { index += 1 }
        return index
    }

    func record(nanoseconds: Int64) {
        record(nanoseconds: nanoseconds, bucket: Self.bucket(nanoseconds: nanoseconds))
    }

    /// - Parameter bucket: `bucket(nanoseconds:)` of the value, found once for every histogram it goes in.
    func record(nanoseconds: Int64, bucket: Int) {
        counts[bucket].wrappingIncrement(ordering: .relaxed)
        sumNanoseconds.wrappingIncrement(by: Int(max(nanoseconds, 0)), ordering: .relaxed)
    }

    var count: Int { counts.reduce(0) { $0 + $1.load(ordering: .relaxed) } }

    /// The `_bucket`, `_sum` and `_count` lines.
    func emit(into text: inout String) {
        var cumulative = 0
        for (index, bound) in Self.bounds.enumerated() {
            cumulative += counts[index].load(ordering: .relaxed)
            text += "\(name)_bucket{\(renderedLabels),le=\"\(bound.bucketRepresentation)\"} \(cumulative)\n"
        }
        cumulative += counts[Self.bounds.count].load(ordering: .relaxed)
        text += "\(name)_bucket{\(renderedLabels),le=\"+Inf\"} \(cumulative)\n"
        let sum = Duration.nanoseconds(sumNanoseconds.load(ordering: .relaxed))
        text += "\(name)_sum{\(renderedLabels)} \(sum.bucketRepresentation)\n"
        text += "\(name)_count{\(renderedLabels)} \(cumulative)\n"
    }

    /// The text format's escapes for a label value: backslash, double quote and line feed.
    static func escaped(_ value: String) -> String {
        var escaped = ""
        for character in value.unicodeScalars {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"": escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.unicodeScalars.append(character)
            }
        }
        return escaped
    }
}

/// Every latency histogram of the process, by name and labels: a configuration reloaded gets
/// the histograms the one before it recorded into, as swift-metrics' registry does for the rest.
final class LatencyHistograms: Sendable {
    /// Each name's histograms, names and histograms in the order they were made.
    private let families = NIOLockedValueBox<[(name: String, histograms: [LatencyHistogram])]>([])

    func histogram(name: String, labels: [(String, String)]) -> LatencyHistogram {
        let made = LatencyHistogram(name: name, labels: labels)
        return families.withLockedValue { families in
            guard let index = families.firstIndex(where: { $0.name == name }) else {
                families.append((name, [made]))
                return made
            }
            if let existing = families[index].histograms.first(where: { $0.renderedLabels == made.renderedLabels }) { return existing }
            families[index].histograms.append(made)
            return made
        }
    }

    /// Each family's `# TYPE` line and its histograms.
    func emit(into text: inout String) {
        for (name, histograms) in families.withLockedValue({ $0 }) {
            text += "# TYPE \(name) histogram\n"
            for histogram in histograms { histogram.emit(into: &text) }
        }
    }
}
