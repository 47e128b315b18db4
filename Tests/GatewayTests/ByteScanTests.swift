@testable import Gateway
import XCTest

/// The word-at-a-time searches find what a byte-at-a-time loop finds, wherever the byte sits
/// relative to a block.
final class ByteScanTests: XCTestCase {
    /// A search from every start over runs of `a` of every length up to `longest`, each of
    /// `specials` in turn at every position, finds what a loop testing `stops` byte by byte finds.
    private func assertFindsWhatALoopFinds(
        longest: Int,
        specials: [UInt8],
        stops: (UInt8) -> Bool,
        _ search: (UnsafeRawBufferPointer, Int) -> Int,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        for length in 0...longest {
            for start in 0...length {
                for position in 0..<max(length, 1) {
                    for special in specials {
                        var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                        if position < length { bytes[position] = special }
                        let expected = (start..<length).first { stops(bytes[$0]) } ?? length
                        let found = bytes.withUnsafeBytes { search($0, start) }
                        XCTAssertEqual(found, expected, "length \(length), start \(start), byte \(special) at \(position)", file: file, line: line)
                    }
                }
            }
        }
    }

    func testTheFirstControlByteIsFoundAtEveryOffsetAndOnlyControlBytesAndDELCount() {
        assertFindsWhatALoopFinds(longest: 40, specials: [0x00, 0x09, 0x0A, 0x0D, 0x1F, 0x7F, 0x20, 0x7E, 0x80, 0xF4, 0xFF], stops: { $0 < 0x20 || $0 == 0x7F }) {
            ByteScan.firstControlByte(in: $0, from: $1)
        }
    }

    func testTheFirstByteThatIsNotVisibleASCIIIsFoundAtEveryOffset() {
        assertFindsWhatALoopFinds(longest: 40, specials: [0x00, 0x09, 0x0D, 0x20, 0x21, 0x7E, 0x7F, 0x80, 0xC3, 0xFF], stops: { !(0x21...0x7E).contains($0) }) {
            ByteScan.firstNonVisible(in: $0, from: $1)
        }
    }

    func testTheFirstByteOutsideASetIsFoundAtEveryOffset() {
        assertFindsWhatALoopFinds(longest: 20, specials: [0x00, 0x20, 0x3A, 0x21, 0x7C, 0x7F, 0x80, 0xFF], stops: { !ASCIIByteSet.token.contains($0) }) {
            ByteScan.firstNonMember(of: .token, in: $0, from: $1)
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
