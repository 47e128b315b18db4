import Prometheus
import XCTest

@testable import Gateway

final class MetricSeriesTests: XCTestCase {
    /// The same values recorded in Prometheus's own histogram, with the same bounds, render the
    /// same lines: a scraper cannot tell the two apart.
    func testAHistogramRendersWhatThePrometheusHistogramRendersForTheSameValues() {
        let registry = PrometheusCollectorRegistry()
        let labels = [("upstream", "app"), ("target", "127.0.0.1:8080")]
        let reference = registry.makeDurationHistogram(name: "latency_seconds", labels: labels, buckets: LatencyHistogram.bounds)
        let series = MetricSeries()
        let histogram = series.histogram(name: "latency_seconds", labels: labels)
        let counts = LoopCounts()
        // Each bound itself, a nanosecond either side of it, zero, and values past the last bound.
        var values: [Int64] = [0, 1, 12_345, 20_000_000_000, 99_000_000_000]
        for bound in LatencyHistogram.bounds {
            let nanoseconds = bound.components.seconds * 1_000_000_000 + bound.components.attoseconds / 1_000_000_000
            values += [nanoseconds - 1, nanoseconds, nanoseconds + 1]
        }
        for value in values {
            reference.recordNanoseconds(value)
            histogram.record(nanoseconds: value, in: counts)
        }
        var ours = ""
        series.emit(totals: counts.values, into: &ours)
        XCTAssertEqual(ours.split(separator: "\n").map(String.init), registry.emitToString().split(separator: "\n").map(String.init))
        XCTAssertEqual(histogram.count(in: counts.values), values.count)
    }

    /// Counters render as the registry's do, including one no loop has counted at yet. (The
    /// registry keeps a family's series in a dictionary: its lines come in no fixed order.)
    func testCountersRenderWhatThePrometheusCountersRender() {
        let registry = PrometheusCollectorRegistry()
        let series = MetricSeries()
        let counts = LoopCounts()
        let allowed = [("route", "auth"), ("limiter", "auth"), ("outcome", "allowed")]
        let limited = [("route", "auth"), ("limiter", "auth"), ("outcome", "limited")]
        registry.makeCounter(name: "ratesync_decisions_total", labels: allowed).increment(by: Int64(3))
        _ = registry.makeCounter(name: "ratesync_decisions_total", labels: limited)
        series.counter(name: "ratesync_decisions_total", labels: allowed).increment(in: counts, by: 3)
        _ = series.counter(name: "ratesync_decisions_total", labels: limited)
        var ours = ""
        series.emit(totals: counts.values, into: &ours)
        let theirs = registry.emitToString()
        XCTAssertEqual(Set(ours.split(separator: "\n")), Set(theirs.split(separator: "\n")))
        XCTAssertEqual(ours.split(separator: "\n").count, theirs.split(separator: "\n").count)
        XCTAssertEqual(ours.split(separator: "\n").first, "# TYPE ratesync_decisions_total counter")
        XCTAssertEqual(theirs.split(separator: "\n").first, "# TYPE ratesync_decisions_total counter")
    }

    func testAValueOnABoundCountsInThatBucketAndOneAboveItInTheNext() {
        let series = MetricSeries()
        let histogram = series.histogram(name: "h", labels: [("upstream", "a")])
        let counts = LoopCounts()
        histogram.record(nanoseconds: 100_000, in: counts)
        histogram.record(nanoseconds: 100_001, in: counts)
        var text = ""
        series.emit(totals: counts.values, into: &text)
        XCTAssertTrue(text.contains("h_bucket{upstream=\"a\",le=\"0.0001\"} 1\n"), text)
        XCTAssertTrue(text.contains("h_bucket{upstream=\"a\",le=\"0.00025\"} 2\n"), text)
        XCTAssertTrue(text.contains("h_bucket{upstream=\"a\",le=\"+Inf\"} 2\n"), text)
        XCTAssertTrue(text.contains("h_count{upstream=\"a\"} 2\n"), text)
    }

    func testLabelValuesAreEscaped() {
        XCTAssertEqual(MetricSeries.render([("upstream", "a\"b\\c\nd")]), #"upstream="a\"b\\c\nd""#)
    }

    /// Each loop counts in its own counts; /metrics renders their sums, and a loop that has not
    /// counted at a series (or at any) adds nothing.
    func testTheLoopsCountsAreSummedPlaceByPlace() {
        let series = MetricSeries()
        let first = series.counter(name: "a_total", labels: [("route", "x")])
        let histogram = series.histogram(name: "b_seconds", labels: [("upstream", "x")])
        let last = series.counter(name: "c_total", labels: [("route", "x")])
        let one = LoopCounts(), two = LoopCounts(), idle = LoopCounts()
        first.increment(in: one)
        first.increment(in: two, by: 2)
        histogram.record(nanoseconds: 300_000, in: two)
        last.increment(in: one, by: 5)
        XCTAssertLessThan(two.values.count, one.values.count)
        let totals = LoopCounts.sum([one.values, two.values, idle.values])
        var text = ""
        series.emit(totals: totals, into: &text)
        XCTAssertTrue(text.contains("a_total{route=\"x\"} 3\n"), text)
        XCTAssertTrue(text.contains("b_seconds_count{upstream=\"x\"} 1\n"), text)
        XCTAssertTrue(text.contains("b_seconds_sum{upstream=\"x\"} 0.0003\n"), text)
        XCTAssertTrue(text.contains("c_total{route=\"x\"} 5\n"), text)
    }

    /// A reloaded configuration asks again for its series: it gets the places that already hold
    /// the counts, and each family is rendered once under one TYPE line.
    func testTheSameNameAndLabelsGiveTheSamePlacesAndEachFamilyHasOneTypeLine() {
        let series = MetricSeries()
        let counts = LoopCounts()
        let first = series.histogram(name: "a_seconds", labels: [("upstream", "x")])
        first.record(nanoseconds: 5, in: counts)
        XCTAssertEqual(series.histogram(name: "a_seconds", labels: [("upstream", "x")]), first)
        _ = series.histogram(name: "a_seconds", labels: [("upstream", "y")])
        _ = series.histogram(name: "b_seconds", labels: [("upstream", "x")])
        let counter = series.counter(name: "c_total", labels: [("route", "r")])
        XCTAssertEqual(series.counter(name: "c_total", labels: [("route", "r")]), counter)
        var text = ""
        series.emit(totals: counts.values, into: &text)
        XCTAssertEqual(text.components(separatedBy: "# TYPE a_seconds histogram\n").count, 2)
        XCTAssertEqual(text.components(separatedBy: "# TYPE b_seconds histogram\n").count, 2)
        XCTAssertEqual(text.components(separatedBy: "# TYPE c_total counter\n").count, 2)
        XCTAssertTrue(text.contains("a_seconds_count{upstream=\"x\"} 1\n"))
        XCTAssertTrue(text.contains("a_seconds_count{upstream=\"y\"} 0\n"))
        XCTAssertLessThan(text.range(of: "upstream=\"x\"")!.lowerBound, text.range(of: "upstream=\"y\"")!.lowerBound)
    }
}
