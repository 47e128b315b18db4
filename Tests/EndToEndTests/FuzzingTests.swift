import Foundation
import TestSupport
import XCTest

/// What a peer's bytes reach first, under libFuzzer (scripts/fuzz.sh): the HTTP/2 server side and
/// the HTTP/1.1 parser. Past findings and the seed corpora replay cleanly, and a bounded run of
/// each fuzz target finds nothing.
final class FuzzingTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    private func inputs(in folder: String) throws -> [String] {
        let directory = repository.appendingPathComponent(folder)
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map {
            directory.appendingPathComponent($0).path
        }
    }

    /// Each fuzz target's ordinary build replays inputs without libFuzzer: a crash or a broken
    /// bound on one of them fails here in every test run, not only when fuzzing.
    func testTheSeedCorpusAndPastFindingsReplayCleanly() throws {
        let http2Seeds = try inputs(in: "Fuzz/corpus/http2")
        XCTAssertGreaterThan(http2Seeds.count, 30, "the conformance cases' bytes")
        let http1Seeds = try inputs(in: "Fuzz/corpus/http1")
        XCTAssertGreaterThan(http1Seeds.count, 10, "requests and responses of each framing")
        for (product, target, seeds) in [
            ("http2-frame-fuzzer", "http2-frames", http2Seeds),
            ("http2-connection-fuzzer", "http2-connection", http2Seeds),
            ("http1-parser-fuzzer", "http1-parser", http1Seeds),
        ] {
            let replay = Binaries.directory.appendingPathComponent(product).path
            let findings = try inputs(in: "Fuzz/regressions/\(target)")
            let result = try runProgram(replay, seeds + findings)
            XCTAssertEqual(result.status, 0, "\(product): \(result.output)")
        }
    }

    /// `RATESYNC_FUZZ_SECONDS` (default 60) per target; 0 skips the run.
    func testABoundedFuzzingRunOfEachTargetFindsNothing() throws {
        let seconds = Int(ProcessInfo.processInfo.environment["RATESYNC_FUZZ_SECONDS"] ?? "") ?? 60
        try XCTSkipIf(seconds == 0, "RATESYNC_FUZZ_SECONDS=0")
        let result = try runProgram("/bin/bash", [repository.appendingPathComponent("scripts/fuzz.sh").path, String(seconds)])
        XCTAssertEqual(result.status, 0, result.output)
        XCTAssertTrue(result.output.contains("http2-frames: nothing found"), result.output)
        XCTAssertTrue(result.output.contains("http2-connection: nothing found"), result.output)
        XCTAssertTrue(result.output.contains("http1-parser: nothing found"), result.output)
        print(result.output)
    }
}
