@testable import Gateway
import XCTest

/// The sixteen-at-a-time searches find what a byte-at-a-time loop finds, wherever the byte sits
/// relative to a block.
final class ByteScanTests: XCTestCase {
    func testTheFirstControlByteIsFoundAtEveryOffsetAndOnlyControlBytesAndDELCount() {
        for length in 0...40 {
            for start in 0...length {
                for position in 0..<max(length, 1) {
                    for special: UInt8 in [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x7F, 0x20, 0x7E, 0x80, 0xF4, 0xFF] {
                        var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                        if position < length { bytes[position] = special }
                        let expected = (start..<length).first { bytes[$0] < 0x20 || bytes[$0] == 0x7F } ?? length
                        let found = bytes.withUnsafeBytes { ByteScan.firstControlByte(in: $0, from: start) }
                        XCTAssertEqual(found, expected, "length \(length), start \(start), byte \(special) at \(position)")
                    }
                }
            }
        }
    }

    func testAByteIsFoundBeforeTheEndGivenAndNotPastIt() {
        for length in 0...40 {
            for position in 0..<max(length, 1) {
                var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: length)
                if position < length { bytes[position] = UInt8(ascii: "\r") }
                for start in 0...length {
                    for end in start...length {
                        let expected = (start..<end).first { bytes[$0] == UInt8(ascii: "\r") } ?? end
                        let found = bytes.withUnsafeBytes { ByteScan.first(UInt8(ascii: "\r"), in: $0, from: start, before: end) }
                        XCTAssertEqual(found, expected, "length \(length), \\r at \(position), \(start)..<\(end)")
                    }
                }
            }
        }
    }
}
