@testable import Gateway
import XCTest

/// The exchange state machine under random orders of events (ExchangeSequence): whatever the
/// order, every upstream connection gets the parts of one admitted request in order and nothing
/// else (a tunnel's bytes only after its 101), a request sent again is sent whole, the client gets
/// one answer per request in the order it asked, no deadline passes unenforced, and once the
/// client goes nothing is held. (ExchangeSequence+Checks says each check.)
final class ExchangeSequenceTests: XCTestCase {
    func testEveryOrderOfEventsKeepsEachRequestWholeOnItsOwnConnection() {
        var reached: [String: Int] = [:]
        for seed in UInt64(1)...10_000 {
            let sequence = ExchangeSequence(seed: seed)
            sequence.play()
            reached.merge(sequence.counts, uniquingKeysWith: +)
            if let first = sequence.violations.first {
                XCTFail("seed \(seed): \(first)\n  after: \(sequence.log.suffix(40).joined(separator: ", "))")
                return
            }
        }
        // The sequences reach every kind of event, or they would prove little.
        for event in [
            "client sends", "client writability flips", "time passes", "drain", "client goes", "admitted", "denied", "late verdict",
            "connection leased", "connect fails", "answer starts", "answer body", "answer ends", "upstream closes",
            "pooled connection closes", "part forwarded", "answered", "upstream closed: retry", "upstream closed: fail",
            "upstream closed: abort", "upstream closed: endTunnel", "upstream switches protocols", "upstream tunnel bytes",
            "tunnel bytes forwarded", "late connection",
        ] {
            XCTAssertGreaterThan(reached[event] ?? 0, 200, "\(event): \(reached)")
        }
        XCTAssertGreaterThan(reached["discard budget spent"] ?? 0, 5, "\(reached)")
    }
}
