import Prometheus
import XCTest

@testable import Gateway

final class LatencyHistogramTests: XCTestCase {
    /// The same values recorded in Prometheus's own histogram, with the same bounds, render the
    /// same lines: a scraper cannot tell the two apart.
    func testRendersWhatThePrometheusHistogramRendersForTheSameValues() {
        let registry = PrometheusCollectorRegistry()
        let labels = [("upstream", "app"), ("target", "127.0.0.1:8080")]
        let reference = registry.makeDurationHistogram(name: "latency_seconds", labels: labels, buckets: LatencyHistogram.bounds)
        let histogram = LatencyHistogram(name: "latency_seconds", labels: labels)
        // Each bound itself, a nanosecond either side of it, zero, and values past the last bound.
        var values: [Int64] = [0, 1, 12_345, 20_000_000_000, 99_000_000_000]
        for bound in LatencyHistogram.bounds {
            let nanoseconds = bound.components.seconds * 1_000_000_000 + bound.components.attoseconds / 1_000_000_000
            values += [nanoseconds - 1, nanoseconds, nanoseconds + 1]
        }
        for value in values {
            reference.recordNanoseconds(value)
            histogram.record(nanoseconds: value)
        }
        var ours = ""
        histogram.emit(into: &ours)
        let theirs = registry.emitToString().split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init)
        XCTAssertEqual(ours.split(separator: "\n").map(String.init), theirs)
        XCTAssertEqual(histogram.count, values.count)
    }

    func testAValueOnABoundCountsInThatBucketAndOneAboveItInTheNext() {
        let histogram = LatencyHistogram(name: "h", labels: [("upstream", "a")])
        histogram.record(nanoseconds: 100_000)
        histogram.record(nanoseconds: 100_001)
        var text = ""
        histogram.emit(into: &text)
        XCTAssertTrue(text.contains("h_bucket{upstream=\"a\",le=\"0.0001\"} 1\n"), text)
        XCTAssertTrue(text.contains("h_bucket{upstream=\"a\",le=\"0.00025\"} 2\n"), text)
        XCTAssertTrue(text.contains("h_bucket{upstream=\"a\",le=\"+Inf\"} 2\n"), text)
        XCTAssertTrue(text.contains("h_count{upstream=\"a\"} 2\n"), text)
    }

    func testLabelValuesAreEscaped() {
        let histogram = LatencyHistogram(name: "h", labels: [("upstream", "a\"b\\c\nd")])
        XCTAssertEqual(histogram.renderedLabels, #"upstream="a\"b\\c\nd""#)
    }

    /// A reloaded configuration asks again for its upstreams' histograms: it gets the ones that
    /// already hold the counts, and each family is rendered once under one TYPE line.
    func testTheSameNameAndLabelsGiveTheSameHistogramAndEachFamilyHasOneTypeLine() {
        let histograms = LatencyHistograms()
        let first = histograms.histogram(name: "a_seconds", labels: [("upstream", "x")])
        first.record(nanoseconds: 5)
        let again = histograms.histogram(name: "a_seconds", labels: [("upstream", "x")])
        XCTAssertTrue(first === again)
        _ = histograms.histogram(name: "a_seconds", labels: [("upstream", "y")])
        _ = histograms.histogram(name: "b_seconds", labels: [("upstream", "x")])
        var text = ""
        histograms.emit(into: &text)
        XCTAssertEqual(text.components(separatedBy: "# TYPE a_seconds histogram\n").count, 2)
        XCTAssertEqual(text.components(separatedBy: "# TYPE b_seconds histogram\n").count, 2)
        XCTAssertTrue(text.contains("a_seconds_count{upstream=\"x\"} 1\n"))
        XCTAssertTrue(text.contains("a_seconds_count{upstream=\"y\"} 0\n"))
        XCTAssertLessThan(text.range(of: "upstream=\"x\"")!.lowerBound, text.range(of: "upstream=\"y\"")!.lowerBound)
    }
}

extension LatencyHistogram {
    /// A value placed and recorded as the upstreams' metrics do it (`UpstreamMetrics.Answer`).
    fileprivate func record(nanoseconds: Int64) {
        record(nanoseconds: nanoseconds, bucket: Self.bucket(nanoseconds: nanoseconds))
    }
}
