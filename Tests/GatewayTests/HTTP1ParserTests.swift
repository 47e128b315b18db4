@testable import Gateway
import NIOCore
import NIOHTTP1
import XCTest

/// Requests cut from bytes as they arrive, in any pieces: the framing decided here is the framing
/// forwarded, so every shape a peer could read differently must be refused.
final class HTTP1ParserTests: XCTestCase {
    private enum Read: Equatable {
        case head(String, String, [String])
        case body(String)
        case end([String])
        case tunnel(String)
        case error(HTTP1RequestError)
    }

    /// Everything `text` parses to, fed in pieces of `piece` bytes.
    private func read(_ text: String, piece: Int = .max, maxHead: Int = 1024) -> [Read] {
        read(Array(text.utf8), piece: piece, maxHead: maxHead)
    }

    private func read(_ bytes: [UInt8], piece: Int = .max, maxHead: Int = 1024) -> [Read] {
        var parser = HTTP1Parser(role: .request, maxHeadBytes: maxHead)
        var out: [Read] = []
        var offset = 0
        while offset < bytes.count {
            var chunk = ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + piece)])
            offset += chunk.readableBytes
            do {
                while let part = try parser.next(&chunk) {
                    switch part {
                    case .requestHead(let request):
                        let head = request.head
                        // What the parser read on the bytes is what a pass over the head's
                        // Strings (HTTP/2's way) reads.
                        XCTAssertEqual(request.fields, RequestFields(head.headers), "\(head)")
                        out.append(.head(head.method.rawValue, head.uri, head.headers.map { "\($0.name)=\($0.value)" }))
                    case .responseHead(let head):
                        out.append(.head("\(head.status.code)", "", head.headers.map { "\($0.name)=\($0.value)" }))
                    case .body(let body):
                        // Consecutive body parts are joined: how bytes split across reads is not
                        // what these tests are about.
                        let text = String(buffer: body)
                        if case .body(let previous) = out.last {
                            out[out.count - 1] = .body(previous + text)
                        } else {
                            out.append(.body(text))
                        }
                    case .end(let trailers):
                        out.append(.end(trailers?.map { "\($0.name)=\($0.value)" } ?? []))
                    case .tunnel(let bytes):
                        Self.appendTunnel(bytes, to: &out)
                    }
                }
            } catch {
                out.append(.error(error))
                return out
            }
        }
        return out
    }

    /// Consecutive tunnel parts are joined, as body parts are.
    private static func appendTunnel(_ bytes: ByteBuffer, to out: inout [Read]) {
        if case .tunnel(let previous) = out.last {
            out[out.count - 1] = .tunnel(previous + String(buffer: bytes))
        } else {
            out.append(.tunnel(String(buffer: bytes)))
        }
    }

    private func assertInAnyPieces(_ text: String, _ expected: [Read], file: StaticString = #filePath, line: UInt = #line) {
        for piece in [Int.max, 1, 2, 3, 7] {
            XCTAssertEqual(read(text, piece: piece), expected, "in pieces of \(piece)", file: file, line: line)
        }
    }

    func testAGetWithoutFramingHasNoBody() {
        assertInAnyPieces(
            "GET /a?b=c HTTP/1.1\r\nHost: x\r\n\r\n",
            [.head("GET", "/a?b=c", ["Host=x"]), .end([])]
        )
    }

    func testAHeadKeptWhileTheNextIsReadKeepsItsOwnFields() throws {
        // The parser builds each head's fields in the array the head before used: a head still
        // held (a pipelined request's, a response being written) must not see the next one's.
        var parser = HTTP1Parser(role: .request, maxHeadBytes: 1024)
        var bytes = ByteBuffer(string: "GET /a HTTP/1.1\r\nHost: a\r\nX-One: 1\r\n\r\nGET /b HTTP/1.1\r\nHost: b\r\n\r\n")
        guard case .requestHead(let first) = try parser.next(&bytes) else { return XCTFail("no first head") }
        XCTAssertEqual(try parser.next(&bytes), .end(nil))
        guard case .requestHead(let second) = try parser.next(&bytes) else { return XCTFail("no second head") }
        XCTAssertEqual(first.head.headers.map { "\($0.name)=\($0.value)" }, ["Host=a", "X-One=1"])
        XCTAssertEqual(second.head.headers.map { "\($0.name)=\($0.value)" }, ["Host=b"])

        var upstream = HTTP1Parser(role: .response, maxHeadBytes: 1024)
        var answers = ByteBuffer(string: "HTTP/1.1 200 OK\r\nA: 1\r\nContent-Length: 0\r\n\r\n")
        upstream.expectResponse(to: .GET)
        guard case .responseHead(let answer) = try upstream.next(&answers) else { return XCTFail("no response head") }
        XCTAssertEqual(try upstream.next(&answers), .end(nil))
        answers.writeString("HTTP/1.1 204 No Content\r\nB: 2\r\n\r\n")
        upstream.expectResponse(to: .GET)
        guard case .responseHead(let next) = try upstream.next(&answers) else { return XCTFail("no second response head") }
        XCTAssertEqual(answer.headers.map { "\($0.name)=\($0.value)" }, ["A=1", "Content-Length=0"])
        XCTAssertEqual(next.headers.map { "\($0.name)=\($0.value)" }, ["B=2"])
    }

    func testAContentLengthBodyAndAPipelinedRequest() {
        assertInAnyPieces(
            "POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: y\r\n\r\n",
            [
                .head("POST", "/p", ["Host=x", "Content-Length=5"]), .body("hello"), .end([]),
                .head("GET", "/", ["Host=y"]), .end([]),
            ]
        )
    }

    func testAChunkedBodyWithExtensionsAndTrailers() {
        assertInAnyPieces(
            "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
                + "5;name=value\r\nhello\r\nA \t;x\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n",
            [
                .head("POST", "/p", ["Host=x", "Transfer-Encoding=Chunked"]), .body("hello0123456789"),
                .end(["X-Sum=1"]),
            ]
        )
    }

    func testAnEmptyTrailerSectionInAnyPieces() {
        assertInAnyPieces(
            "POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",
            [
                .head("POST", "/p", ["Host=x", "Transfer-Encoding=chunked"]), .body("ok"), .end([]),
                .head("GET", "/", ["Host=x"]), .end([]),
            ]
        )
    }

    func testAGetWithABodyIsFramedByItsLengthWhateverItsConnectionHeaderSays() {
        // A client naming Content-Length in Connection cannot turn its body into a second request.
        assertInAnyPieces(
            "GET / HTTP/1.1\r\nHost: x\r\nConnection: content-length\r\nContent-Length: 23\r\n\r\nGET /admin HTTP/1.1\r\n\r\n",
            [
                .head("GET", "/", ["Host=x", "Connection=content-length", "Content-Length=23"]),
                .body("GET /admin HTTP/1.1\r\n\r\n"), .end([]),
            ]
        )
    }

    func testAmbiguousFramingIsRefused() {
        let heads = [
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
            "Content-Length: 5\r\nContent-Length: 5\r\n",
            "Content-Length: 5, 5\r\n",
            "Content-Length: +5\r\n",
            "Content-Length: -1\r\n",
            "Content-Length: 0x10\r\n",
            "Content-Length: 1 0\r\n",
            "Content-Length: \r\n",
            "Content-Length: 99999999999999999999\r\n",
            "Content-Length : 5\r\n",
            " Content-Length: 5\r\n",
            "Transfer-Encoding : chunked\r\n",
            "X: a\r\n Content-Length: 5\r\n",
            "X: a\rContent-Length: 5\r\n",
            "X: a\nContent-Length: 5\r\n",
            "X: a\u{0}b\r\n",
            "X: a\u{7f}b\r\n",
            "Bad Name: 1\r\n",
            ": empty\r\n",
        ]
        for head in heads {
            let parts = read("POST / HTTP/1.1\r\nHost: x\r\n" + head + "\r\nhello")
            guard case .error(.malformed) = parts.last else {
                XCTFail("\(head.debugDescription) gave \(parts)")
                continue
            }
            XCTAssertEqual(parts.count, 1, "nothing before the error for \(head.debugDescription)")
        }
    }

    func testTransferCodingsOtherThanChunkedAloneAreNotImplemented() {
        for coding in ["gzip", "gzip, chunked", "chunked, gzip", "chunked, chunked", "identity", "chunked;q=1", "xchunked"] {
            XCTAssertEqual(
                read("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: \(coding)\r\n\r\n"),
                [.error(.unsupportedTransferCoding)],
                coding
            )
        }
        XCTAssertEqual(
            read("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n"),
            [.error(.unsupportedTransferCoding)]
        )
        guard case .error(.malformed) = read("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n").last else {
            return XCTFail("chunked on HTTP/1.0 must be refused")
        }
    }

    func testBrokenChunksAreRefused() {
        for body in ["g\r\n", "\r\n", "5\r\nhelloX\r\n", "5 x\r\nhello\r\n", "5\nhello\r\n", "-5\r\n", "1111111111111111\r\n", "5;\u{1}\r\n"] {
            let parts = read("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
            guard case .error(.malformed) = parts.last else {
                XCTFail("\(body.debugDescription) gave \(parts)")
                continue
            }
        }
    }

    /// A line ended by LF alone can never make the CRLF or empty line the parser waits for: it is
    /// refused as it arrives, in a head, a chunk line or a trailer section, whatever follows or
    /// does not, instead of holding the connection until the head budget or the idle timeout.
    func testALineEndedByLFAloneIsRefusedAsItArrives() {
        let chunked = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        let cutOff = [
            "GET / HTTP/1.1\r\nHost: x\r\n\n",
            "GET / HTTP/1.1\r\nHost: x\n",
            "GET / HTTP/1.1\nHost: x\n\n",
            "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\n\r\n",
            "\nGET / HTTP/1.1\r\n",
            "\r\n\nGET / HTTP/1.1\r\n",
            chunked + "5\n",
            chunked + "5;a=b\nhello",
            chunked + "0\r\n\n",
            chunked + "0\r\nX-T: 1\n",
            chunked + "0\r\nX-T: 1\r\n\n",
        ]
        for text in cutOff {
            for piece in [Int.max, 1, 2, 3, 7] {
                let parts = read(text, piece: piece)
                guard case .error(.malformed) = parts.last else {
                    XCTFail("\(text.debugDescription) in pieces of \(piece) gave \(parts)")
                    continue
                }
            }
        }
        for piece in [Int.max, 1, 5] {
            XCTAssertEqual(
                responses("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\n", to: [.GET], piece: piece).last,
                .error(.malformed("a line ends in LF without CR")),
                "in pieces of \(piece)"
            )
        }
    }

    func testVersions() {
        XCTAssertEqual(read("GET / HTTP/1.2\r\nHost: x\r\n\r\n"), [.head("GET", "/", ["Host=x"]), .end([])])
        var parser = HTTP1Parser(role: .request, maxHeadBytes: 100)
        var buffer = ByteBuffer(string: "GET / HTTP/1.2\r\nHost: x\r\n\r\n")
        guard case .requestHead(let request) = try? parser.next(&buffer) else { return XCTFail() }
        XCTAssertEqual(request.head.version, .http1_1, "a later HTTP/1 minor version is served as 1.1")
        XCTAssertEqual(read("GET / HTTP/2.0\r\n\r\n"), [.error(.unsupportedVersion)])
        XCTAssertEqual(read("GET / HTTP/0.9\r\n\r\n"), [.error(.unsupportedVersion)])
        for line in ["GET / HTTP/1.1 \r\n", "GET  / HTTP/1.1\r\n", "GET / http/1.1\r\n", "GET /\r\n", "GET / HTTP/1.1\n", "G(T / HTTP/1.1\r\n", "GET /a b HTTP/1.1\r\n"] {
            guard case .error(.malformed) = read(line + "Host: x\r\n\r\n").last else {
                XCTFail("\(line.debugDescription) must be refused")
                continue
            }
        }
    }

    func testTheHeadBudgetCountsEveryByteOnTheWire() {
        // Spaces before a value are bytes the client sent: they count, and are never buffered past
        // the budget however they arrive.
        let padded = "GET / HTTP/1.1\r\nHost: x\r\nX:" + String(repeating: " ", count: 2000) + "v\r\n\r\n"
        for piece in [Int.max, 100, 1] {
            XCTAssertEqual(read(padded, piece: piece, maxHead: 1024), [.error(.headTooLarge)], "pieces of \(piece)")
        }
        let exact = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        XCTAssertEqual(read(exact, maxHead: exact.utf8.count), [.head("GET", "/", ["Host=x"]), .end([])])
        XCTAssertEqual(read(exact, maxHead: exact.utf8.count - 1), [.error(.headTooLarge)])
        // Trailers have the same budget.
        let trailers = "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: "
            + String(repeating: "a", count: 2000) + "\r\n\r\n"
        XCTAssertEqual(read(trailers, piece: 64).last, .error(.headTooLarge))
    }

    func testEmptyLinesBeforeARequestAreIgnoredUpToTheHeadBudget() {
        assertInAnyPieces("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", [.head("GET", "/", ["Host=x"]), .end([])])
        // Counted across reads, and afresh for each request.
        var parser = HTTP1Parser(role: .request, maxHeadBytes: 64)
        var lines = ByteBuffer(string: String(repeating: "\r\n", count: 30) + "GET / HTTP/1.1\r\nHost: x\r\n\r\n" + String(repeating: "\r\n", count: 30))
        XCTAssertNotNil(try parser.next(&lines), "the head")
        XCTAssertNotNil(try parser.next(&lines), "its end")
        XCTAssertNil(try parser.next(&lines), "60 bytes of empty lines skipped, within the budget of 64")
        XCTAssertEqual(lines.readableBytes, 0)
        var more = ByteBuffer(string: "\r\n\r\n\r\n")
        XCTAssertThrowsError(try parser.next(&more)) { error in
            XCTAssertEqual(error as? HTTP1RequestError, .malformed("more empty lines before a request than a head may hold"))
        }
    }

    func testObsTextIsKeptByteForByte() {
        let value: [UInt8] = [0x61, 0xE9, 0xFF, 0x80, 0x62]
        let bytes = Array("GET / HTTP/1.1\r\nHost: x\r\nX-Name: ".utf8) + value + Array("\r\n\r\n".utf8)
        var parser = HTTP1Parser(role: .request, maxHeadBytes: 1024)
        var buffer = ByteBuffer(bytes: bytes)
        guard case .requestHead(let request) = try? parser.next(&buffer) else { return XCTFail() }
        var out = ByteBuffer()
        HTTP1Writer.writeFields(["X-Name": request.head.headers.first(name: "x-name")!], into: &out)
        XCTAssertEqual(Array(out.readableBytesView), Array("X-Name: ".utf8) + value + Array("\r\n\r\n".utf8))
        // Valid UTF-8 stays as it is, both ways.
        var utf8 = ByteBuffer()
        HTTP1Writer.writeFields(["X-Name": "é☃"], into: &utf8)
        XCTAssertEqual(String(buffer: utf8), "X-Name: é☃\r\n\r\n")
    }

    func testTheAnswerToABadHeadDoesNotDependOnWhereItsReadsEnded() {
        // Past the head budget, what pieces would have refused within it is refused (400), not
        // answered as too large (431); a version not served is seen before a later bare LF.
        let pad = String(repeating: "a", count: 100)
        let cases: [(String, HTTP1RequestError?)] = [
            ("G\u{2}T / HTTP/1.1\r\nX: \(pad)\r\n\r\n", nil),
            ("GET / HTTP/1.1\r\nX: a\nY: \(pad)\r\n\r\n", nil),
            ("GET / HTTP/1.1\r\nX: \(pad)\r\n\r\n", .headTooLarge),
            ("GET / HTTP/0.1\r\nX: a\nY: b\r\n\r\n", .unsupportedVersion),
        ]
        for (text, expected) in cases {
            for piece in [Int.max, 1, 2, 7, 33] {
                guard case .error(let error) = read(text, piece: piece, maxHead: 64).last else {
                    XCTFail("\(text.debugDescription) in pieces of \(piece): not refused")
                    continue
                }
                if let expected {
                    XCTAssertEqual(error, expected, "\(text.debugDescription) in pieces of \(piece)")
                } else if case .malformed = error {
                } else {
                    XCTFail("\(text.debugDescription) in pieces of \(piece): \(error)")
                }
            }
        }
    }

    func testAConnectionOptionThatIsNoTokenNamesNoFieldWhicheverWayItIsRead() {
        // Obs-text in an option: the parser reads its bytes, an HTTP/2 head's Strings hold them
        // escaped; neither names a field (`read` checks that both passes agree).
        let bytes = Array("GET / HTTP/1.1\r\nHost: a\r\nConnection: conte".utf8) + [0x91, 0x8B]
            + Array("-length, X-Drop\r\nContent-Length: 1\r\nX-Drop: 1\r\n\r\nz".utf8)
        XCTAssertEqual(read(bytes), [
            .head("GET", "/", ["Host=a", "Connection=conte\u{10FF91}\u{10FF8B}-length, X-Drop", "Content-Length=1", "X-Drop=1"]),
            .body("z"), .end([]),
        ])
        var parser = HTTP1Parser(role: .request, maxHeadBytes: 1024)
        var buffer = ByteBuffer(bytes: bytes)
        guard case .requestHead(let request) = try? parser.next(&buffer) else { return XCTFail() }
        XCTAssertTrue(request.fields.options.removes("x-drop"))
        XCTAssertFalse(request.fields.options.removes("content-length"))
        XCTAssertFalse(request.fields.options.removes("conte-length"))
    }

    func testAHostMadeOnceForAConnectionIsTheOneEachRequestsBytesMake() throws {
        // One room across a connection's requests, against a fresh room for each: the same
        // String bytes for bytes, whatever came before (obs-text, its escaped spelling sent as
        // UTF-8, a spelling String's `==` holds equal).
        let hosts: [[UInt8]] = [
            Array("a.example".utf8), Array("a.example".utf8), Array("b.example".utf8),
            [0x61, 0xE9], [0x61, 0xE9], Array("a\u{10FFE9}".utf8), [0x61, 0xE9],
            Array("K.example".utf8), Array("\u{212A}.example".utf8), Array("K.example".utf8),
            Array("a.example:8080".utf8), Array("a.example:8081".utf8), Array("a.example:8080".utf8),
        ]
        func host(_ value: [UInt8], _ room: inout HTTP1HeadParser.RequestRoom) throws -> [UInt8] {
            let head = Array("GET / HTTP/1.1\r\nHost: ".utf8) + value + Array("\r\n\r\n".utf8)
            let request = try head.withUnsafeBytes { bytes throws(HTTP1RequestError) in try HTTP1HeadParser.requestHead(bytes, room: &room).request }
            return Array(try XCTUnwrap(request.fields.host).utf8)
        }
        var shared = HTTP1HeadParser.RequestRoom()
        for value in hosts {
            var fresh = HTTP1HeadParser.RequestRoom()
            XCTAssertEqual(try host(value, &shared), try host(value, &fresh), "\(value)")
        }
        var fresh = HTTP1HeadParser.RequestRoom()
        XCTAssertNotEqual(try host(Array("\u{212A}.example".utf8), &fresh), Array("K.example".utf8))
    }

    func testNothingIsReadAfterAnError() throws {
        var parser = HTTP1Parser(role: .request, maxHeadBytes: 1024)
        var buffer = ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\nBROKEN\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")
        XCTAssertNotNil(try? parser.next(&buffer))
        XCTAssertNotNil(try? parser.next(&buffer))
        XCTAssertThrowsError(try parser.next(&buffer))
        XCTAssertNil(try parser.next(&buffer))
        XCTAssertEqual(buffer.readableBytes, 0)
    }

    // MARK: responses

    /// The parts of responses to `methods`, one request sent before each.
    /// - Parameter tunnel: the first request was a WebSocket handshake.
    private func responses(_ text: String, to methods: [HTTPMethod], piece: Int = .max, tunnel: Bool = false) -> [Read] {
        var parser = HTTP1Parser(role: .response, maxHeadBytes: 1024)
        var pending = methods
        var out: [Read] = []
        let bytes = Array(text.utf8)
        var offset = 0
        if !pending.isEmpty { parser.expectResponse(to: pending.removeFirst(), tunnel: tunnel) }
        do {
            while offset < bytes.count {
                var chunk = ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + piece)])
                offset += chunk.readableBytes
                while let part = try parser.next(&chunk) {
                    switch part {
                    case .responseHead(let head): out.append(.head("\(head.status.code)", "", head.headers.map { "\($0.name)=\($0.value)" }))
                    case .body(let body):
                        if case .body(let previous) = out.last { out[out.count - 1] = .body(previous + String(buffer: body)) } else { out.append(.body(String(buffer: body))) }
                    case .end(let trailers):
                        out.append(.end(trailers?.map { "\($0.name)=\($0.value)" } ?? []))
                        if !pending.isEmpty { parser.expectResponse(to: pending.removeFirst()) }
                    case .requestHead: XCTFail("a request head from a response parser")
                    case .tunnel(let bytes): Self.appendTunnel(bytes, to: &out)
                    }
                }
            }
            if let last = try parser.finish(), case .end = last { out.append(.end([])) }
        } catch {
            out.append(.error(error))
        }
        return out
    }

    func testEveryControlByteIsRefusedWhereverAFieldValueHoldsItAndTabAndObsTextPass() {
        let controls = (UInt8(0)...0x1F).filter { $0 != 0x09 } + [0x7F]
        // Offsets across the eight-byte words values are scanned in.
        for offset in [0, 1, 7, 8, 9, 15, 16, 17] {
            let before = String(repeating: "v", count: offset)
            for control in controls {
                let byte = String(UnicodeScalar(control))
                let value = read("GET / HTTP/1.1\r\nHost: x\r\nX: \(before)\(byte)v\r\n\r\n")
                let reason = responses("HTTP/1.1 200 \(before)\(byte)K\r\nContent-Length: 0\r\n\r\n", to: [.GET])
                let chunkExtension = read("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1;\(before)\(byte)\r\nx\r\n0\r\n\r\n")
                for (place, parts) in [("value", value), ("reason phrase", reason), ("chunk extension", chunkExtension)] {
                    guard case .error(.malformed) = parts.last else {
                        XCTFail("byte \(control) at \(offset) in a \(place) gave \(parts)")
                        continue
                    }
                }
            }
            XCTAssertEqual(read("GET / HTTP/1.1\r\nHost: x\r\nX: \(before)\t\u{E9}v\r\n\r\n").count, 2, "tab and obs-text at \(offset)")
            XCTAssertEqual(responses("HTTP/1.1 200 \(before)\tK\r\nContent-Length: 0\r\n\r\n", to: [.GET]).count, 2, "a tab in a reason phrase at \(offset)")
        }
    }

    func testResponsesEndWhereTheirFramingSays() {
        for piece in [Int.max, 1, 5] {
            XCTAssertEqual(
                responses("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", to: [.POST], piece: piece),
                [.head("200", "", ["Content-Length=2"]), .body("ok"), .end([])]
            )
            XCTAssertEqual(
                responses("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", to: [.GET], piece: piece),
                [.head("200", "", ["Transfer-Encoding=chunked"]), .body("ok"), .end([])]
            )
            XCTAssertEqual(
                responses("HTTP/1.0 200\r\n\r\nuntil the close", to: [.GET], piece: piece),
                [.head("200", "", []), .body("until the close"), .end([])]
            )
            XCTAssertEqual(
                responses("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", to: [.HEAD, .GET], piece: piece),
                [.head("200", "", ["Content-Length=9"]), .end([]), .head("204", "", ["Content-Length=9"]), .end([])],
                "a HEAD's answer and a 204 have no body, whatever their length says"
            )
        }
    }

    func testAnUpstreamSpeakingOutOfTurnIsAnError() {
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        XCTAssertEqual(responses(answer + "HTTP/1.1 200 OK\r\n\r\n", to: [.GET]).last, .error(.malformed("bytes before any request was sent")))
        XCTAssertEqual(responses(answer + "H", to: [.GET]).last, .error(.malformed("bytes before any request was sent")))
        XCTAssertEqual(responses("HTTP/1.1 200 OK\r\n\r\n", to: []).last, .error(.malformed("bytes before any request was sent")))
        for broken in ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\n\r\n", "HTTP/2 200\r\n\r\n", "HTTP/1.1 2000\r\n\r\n", "HTTP/1.1 099 Low\r\n\r\n", "HTTP/1.1 000\r\n\r\n", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nabc", "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"]
        {
            guard case .error = responses(broken, to: [.GET]).last else {
                XCTFail(broken.debugDescription)
                continue
            }
        }
    }

    // MARK: WebSocket handshakes

    private static let handshake =
        "GET /chat HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: x\r\n\r\n"
    private static let handshakeFields = ["Host=a", "Upgrade=websocket", "Connection=Upgrade", "Sec-WebSocket-Key=x"]

    func testBytesAfterAWebSocketHandshakeAreTheTunnelsNeverARequest() {
        // Whatever follows the handshake, a request line included, is handed out as tunnel
        // bytes: it reaches an upstream only through a tunnel its 101 opened.
        let smuggled = "GET /admin HTTP/1.1\r\nHost: a\r\n\r\n"
        assertInAnyPieces(
            Self.handshake + smuggled,
            [.head("GET", "/chat", Self.handshakeFields), .end([]), .tunnel(smuggled)]
        )
    }

    func testOnlyABodilessGETNamingWebSocketIsAHandshake() {
        let next = "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"
        let nextHead = Read.head("GET", "/next", ["Host=a"])
        // Another protocol (h2c would carry requests nothing routed): HTTP goes on.
        XCTAssertEqual(
            read("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n" + next),
            [.head("GET", "/", ["Host=a", "Upgrade=h2c", "Connection=Upgrade"]), .end([]), nextHead, .end([])]
        )
        // Connection must name the upgrade.
        XCTAssertEqual(
            read("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n" + next),
            [.head("GET", "/", ["Host=a", "Upgrade=websocket"]), .end([]), nextHead, .end([])]
        )
        // A body: no handshake has one.
        XCTAssertEqual(
            read("POST / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\nContent-Length: 2\r\n\r\nhi" + next),
            [.head("POST", "/", ["Host=a", "Upgrade=websocket", "Connection=upgrade", "Content-Length=2"]), .body("hi"), .end([]), nextHead, .end([])]
        )
        // Listed among others, in any case.
        XCTAssertEqual(
            read("GET / HTTP/1.1\r\nHost: a\r\nUpgrade: foo, WebSocket\r\nConnection: keep-alive, UPGRADE\r\n\r\nxyz"),
            [.head("GET", "/", ["Host=a", "Upgrade=foo, WebSocket", "Connection=keep-alive, UPGRADE"]), .end([]), .tunnel("xyz")]
        )
    }

    func testAnUpstreams101OpensATunnelOnlyForAHandshakeAndOnlyToWebSocket() {
        let accepted = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        for piece in [Int.max, 1, 5] {
            XCTAssertEqual(
                responses(accepted + "frames", to: [.GET], piece: piece, tunnel: true),
                [.head("101", "", ["Upgrade=websocket", "Connection=Upgrade"]), .tunnel("frames")],
                "in pieces of \(piece)"
            )
        }
        // Not asked for.
        XCTAssertEqual(responses(accepted, to: [.GET]), [.error(.malformed("a 101 to a request that asked for no upgrade"))])
        // Switched to something else than what was asked.
        XCTAssertEqual(
            responses("HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n", to: [.GET], tunnel: true),
            [.error(.malformed("a 101 to another protocol than websocket"))]
        )
        // A refusal is an ordinary response, after which nothing may come unasked.
        XCTAssertEqual(
            responses("HTTP/1.1 403 Forbidden\r\nContent-Length: 2\r\n\r\nno", to: [.GET], tunnel: true),
            [.head("403", "", ["Content-Length=2"]), .body("no"), .end([])]
        )
    }

    /// Whether a read that ends here leaves the peer owing a body: the codecs then have the
    /// kernel acknowledge at once what came (a peer with Nagle's algorithm on holds its body's
    /// write until its head is acknowledged).
    func testABodyIsOwedFromItsHeadToItsEndAndNeverOutsideIt() throws {
        func owed(_ role: HTTP1Parser.Role, after pieces: [String], expecting method: HTTPMethod = .GET) throws -> [Bool] {
            var parser = HTTP1Parser(role: role, maxHeadBytes: 1024)
            if role == .response { parser.expectResponse(to: method) }
            return try pieces.map { piece in
                var buffer = ByteBuffer(string: piece)
                while try parser.next(&buffer) != nil {}
                return parser.isWithinBody
            }
        }
        XCTAssertEqual(try owed(.request, after: ["POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\n", "ab", "cd"]), [true, true, false])
        XCTAssertEqual(try owed(.request, after: ["GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n"]), [false, false])
        XCTAssertEqual(try owed(.request, after: ["POST / HTTP/1.1\r\nHost: a\r\n", "Content-Length: 2\r\n\r\nab"]), [false, false])
        XCTAssertEqual(
            try owed(.request, after: ["PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "2\r\nab\r\n", "0\r\n", "\r\n"]),
            [true, true, true, false]
        )
        XCTAssertEqual(try owed(.response, after: ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n", "ok"]), [true, false])
        XCTAssertEqual(try owed(.response, after: ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n"], expecting: .HEAD), [false])
        XCTAssertEqual(try owed(.response, after: ["HTTP/1.1 200 OK\r\n\r\n", "until the close"]), [true, true])
    }
}
