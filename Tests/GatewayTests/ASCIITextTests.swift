@testable import Gateway
import NIOHTTP1
import XCTest

/// The byte-level comparisons header names, `Connection` options and list values go through.
final class ASCIITextTests: XCTestCase {
    func testTheByteSetsHoldExactlyTheirDefinitions() {
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789".utf8)
        let token = ASCIIByteSet(letters + Array("!#$%&'*+-.^_`|~".utf8))
        let registeredName = ASCIIByteSet(letters + Array("-._~%!$&'()*+,;=".utf8))
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
}
