@testable import Gateway
import NIOHTTP1
import XCTest

/// The byte-level comparisons header names, `Connection` options and list values go through.
final class ASCIITextTests: XCTestCase {
    func testTheByteSetsHoldExactlyTheirDefinitions() {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)
        let token = ASCIIByteSet(letters + Array("!#$%&'*+-.^_`|~".utf8))
        let registeredName = ASCIIByteSet(letters + Array("-._~!$&'()*+,;=".utf8))
        for byte in UInt8.min...UInt8.max {
            XCTAssertEqual(ASCIIByteSet.token.contains(byte), token.contains(byte), "byte \(byte)")
            XCTAssertEqual(ASCIIByteSet.registeredName.contains(byte), registeredName.contains(byte), "byte \(byte)")
        }
        XCTAssertTrue(ASCIIByteSet.token.contains(UInt8(ascii: "~")))
        XCTAssertFalse(ASCIIByteSet.token.contains(UInt8(ascii: ":")))
        XCTAssertFalse(ASCIIByteSet.token.contains(0xC3))
    }

    func testComparisonsIgnoreOnlyASCIICase() {
        XCTAssertTrue("Content-LENGTH".asciiCaseInsensitiveEquals("content-length"))
        XCTAssertFalse("content-lengt".asciiCaseInsensitiveEquals("content-length"))
        XCTAssertFalse("content-lengthx".asciiCaseInsensitiveEquals("content-length"))
        XCTAssertTrue(ForwardedHeaders.isRateLimitHeader("X-RateLimit-Limit"))
        XCTAssertTrue(ForwardedHeaders.isRateLimitHeader("RATELIMIT-Policy"))
        XCTAssertFalse(ForwardedHeaders.isRateLimitHeader("X-Rate"))
        XCTAssertFalse(ForwardedHeaders.isRateLimitHeader("Rate"))
        // Only A to Z fold: `@` (0x40) and `[` (0x5B) sit beside them.
        XCTAssertFalse("@".asciiCaseInsensitiveEquals("`"))
        XCTAssertFalse("[".asciiCaseInsensitiveEquals("{"))
        // The Kelvin sign lower-cases to `k` in Unicode, never in a token.
        XCTAssertFalse("\u{212A}eep-alive".asciiCaseInsensitiveEquals("keep-alive"))
        // A long (heap-stored) String compares as a short (inline) one does.
        XCTAssertTrue(String(repeating: "AbC", count: 20).asciiCaseInsensitiveEquals(String(repeating: "abc", count: 20)))
    }

    func testWordsAreLoweredAsTheirBytesAreOneByOne() {
        for byte in UInt8.min...UInt8.max {
            for position in 0..<8 {
                let bytes = (0..<8).map { $0 == position ? byte : UInt8(ascii: "Q") &+ UInt8($0) }
                let word = bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                let lowered = bytes.map(ASCIIText.lowered).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) }
                XCTAssertEqual(ASCIIText.loweredWord(word), lowered, "byte \(byte) at \(position)")
            }
        }
    }

    func testPrefixesOfEveryLengthCompareAsByteByByte() {
        let lower = Array("x-forwarded-proto-and-more".utf8)
        for length in 0...lower.count {
            let prefix = Array(lower.prefix(length))
            var upper = prefix.map { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") ? $0 - 0x20 : $0 }
            upper += Array("TAIL".utf8)
            upper.withUnsafeBytes { upper in
                prefix.withUnsafeBytes { prefix in XCTAssertTrue(ASCIIText.hasPrefix(upper, lowercased: prefix), "length \(length)") }
            }
            for index in 0..<length {
                for wrong: UInt8 in [prefix[index] ^ 0x01, prefix[index] ^ 0x20 ^ 0x80, 0x7F] where wrong != prefix[index] {
                    var changed = upper
                    changed[index] = wrong
                    let expected = ASCIIText.lowered(wrong) == prefix[index]
                    changed.withUnsafeBytes { changed in
                        prefix.withUnsafeBytes { prefix in
                            XCTAssertEqual(ASCIIText.hasPrefix(changed, lowercased: prefix), expected, "length \(length), byte \(wrong) at \(index)")
                        }
                    }
                }
            }
        }
    }

    func testFieldNamesAreTheSameToAnUpstreamThatReadsUnderscoresAsHyphens() {
        func same(_ name: String, _ other: String) -> Bool {
            name.withUTF8Bytes { name in other.withUTF8Bytes { ASCIIText.namesSameField(name, $0) } }
        }
        XCTAssertTrue(same("X_Forwarded_For", "x-forwarded-for"))
        XCTAssertTrue(same("x-forwarded_FOR", "x-forwarded-for"))
        XCTAssertTrue(same("api-key", "api_key"), "either way round")
        XCTAssertTrue(same("X-Forwarded-For", "x-forwarded-for"))
        XCTAssertFalse(same("X.Forwarded.For", "x-forwarded-for"))
        XCTAssertFalse(same("X_Forwarded_Fo", "x-forwarded-for"))
    }

    func testListValuesAreSplitOnCommasAndTrimmed() {
        XCTAssertTrue("keep-alive, Upgrade".listsToken("upgrade"))
        XCTAssertTrue(" ,\tUPGRADE\t, ".listsToken("upgrade"))
        XCTAssertFalse("upgrades".listsToken("upgrade"))
        XCTAssertFalse("up grade".listsToken("upgrade"))
        XCTAssertFalse("".listsToken("upgrade"))
        XCTAssertFalse(",,,".listsToken("upgrade"))
    }

    func testConnectionOptionsAreReadWithoutRegardToCaseOrSpacing() {
        let options = ConnectionOptions(["Connection": "Keep-Alive ,  X-Secret,,CLOSE, Content-Length, host", "TE": "gzip, Trailers"])
        XCTAssertFalse(options.keepsAlive(.http1_1))
        XCTAssertTrue(options.acceptsTrailers)
        XCTAssertTrue(options.removes("x-secret"))
        XCTAssertTrue(options.removes("X-SECRET"))
        XCTAssertTrue(options.removes("te"))
        // Framing and routing fields stay, whatever `Connection` says.
        XCTAssertFalse(options.removes("Content-Length"))
        XCTAssertFalse(options.removes("Host"))
        XCTAssertFalse(options.removes("x-other"))
        XCTAssertTrue(ConnectionOptions(["Connection": "keep-alive"]).keepsAlive(.http1_0))
        XCTAssertFalse(ConnectionOptions(["Connection": "keep-alive-ish"]).keepsAlive(.http1_0))
    }

    /// Past a few names the list is held differently (a set); what it removes is the same.
    func testAConnectionFieldListingThousandsOfNamesRemovesEachOfThemAndNothingElse() {
        let names = (0..<5_000).map { "X-Hop-\($0)" }
        var headers: HTTPHeaders = ["Connection": (names + names + ["Content-Length", "Host", "close"]).joined(separator: ", ")]
        headers.add(name: "Connection", value: "x-HOP-late")
        let options = ConnectionOptions(headers)
        for name in names + ["x-hop-late"] {
            XCTAssertTrue(options.removes(name.uppercased()), name)
            XCTAssertTrue(options.removes(name.lowercased()), name)
        }
        XCTAssertFalse(options.removes("Content-Length"))
        XCTAssertFalse(options.removes("host"))
        XCTAssertFalse(options.removes("x-hop-5000"))
        XCTAssertFalse(options.removes("x-hop-"))
        XCTAssertFalse(options.keepsAlive(.http1_1))
        XCTAssertEqual(options, ConnectionOptions(headers))
    }
}
