import HTTPFieldText
import NIOCore
import NIOHPACK
import XCTest

@testable import HTTP2Server

final class HPACKFieldDecoderTests: XCTestCase {
    private func buffer(_ hex: String) -> ByteBuffer {
        var bytes: [UInt8] = []
        var index = hex.startIndex
        while index < hex.endIndex {
            let next = hex.index(index, offsetBy: 2)
            bytes.append(UInt8(hex[index..<next], radix: 16)!)
            index = next
        }
        return ByteBuffer(bytes: bytes)
    }

    private func pairs(_ headers: HPACKHeaders) -> [[String]] {
        headers.map { [$0.name, $0.value] }
    }

    /// The bytes a FieldText String stands for.
    private func receivedBytes(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        for scalar in text.unicodeScalars {
            if let byte = FieldText.escapedByte(scalar) { bytes.append(byte) } else { bytes += Array(String(scalar).utf8) }
        }
        return bytes
    }

    /// RFC 7541, C.3 and C.4: three requests on one connection, each naming entries the ones
    /// before it added, without and then with Huffman coding.
    func testTheRFCExamplesDecode() throws {
        let expected: [[[String]]] = [
            [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"]],
            [[":method", "GET"], [":scheme", "http"], [":path", "/"], [":authority", "www.example.com"], ["cache-control", "no-cache"]],
            [[":method", "GET"], [":scheme", "https"], [":path", "/index.html"], [":authority", "www.example.com"], ["custom-key", "custom-value"]],
        ]
        let plain = [
            "828684410f7777772e6578616d706c652e636f6d",
            "828684be58086e6f2d6361636865",
            "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
        ]
        let huffman = [
            "828684418cf1e3c2e5f23a6ba0ab90f4ff",
            "828684be5886a8eb10649cbf",
            "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
        ]
        for blocks in [plain, huffman] {
            var decoder = HPACKFieldDecoder(maxListSize: 1 << 16)
            for (block, fields) in zip(blocks, expected) {
                XCTAssertEqual(pairs(try decoder.decode(buffer(block))), fields, block)
            }
        }
    }

    /// Bytes that are not UTF-8 come out as the FieldText Strings that stand for them, plain or
    /// Huffman-coded (blocks made by Python's hpack).
    func testValuesKeepTheBytesSent() throws {
        var decoder = HPACKFieldDecoder(maxListSize: 1 << 16)
        let fields = try decoder.decode(buffer("824084f2b1e3478c20e5ffffad4fffffb942d5274085f2b5a995ef8820e5fffe3fffeeff"))
        XCTAssertEqual(fields.map(\.name), [":method", "x-obs", "x-utf8"])
        XCTAssertEqual(receivedBytes(fields.map(\.value)[1]), Array("caf".utf8) + [0xE9, 0x20, 0xFF] + Array(" end".utf8))
        XCTAssertEqual(fields.map(\.value)[2], "café", "valid UTF-8 is kept as it is")

        let huffman = try HPACKFieldDecoder(maxListSize: 1 << 16).decoding(buffer("4084f2b1e3478cfffe6ffff4bfffff87ffffdd"))
        XCTAssertEqual(receivedBytes(huffman.map(\.value)[0]), [0x80, 0x81, 0xFE, 0xFF])
        let plain = try HPACKFieldDecoder(maxListSize: 1 << 16).decoding(buffer("0003782d6103e920ff"))
        XCTAssertEqual(receivedBytes(plain.map(\.value)[0]), [0xE9, 0x20, 0xFF])
    }

    /// Every byte value, Huffman-coded (by Python's hpack): codes of 5 to 30 bits, found by the
    /// one-lookup path and the bit-by-bit one.
    func testEveryByteDecodesFromItsHuffmanCode() throws {
        let block =
            "4084f2b0e8a3ffc803ffc7fffd8fffffe2fffffe3fffffe4fffffe5fffffe6fffffe7fffffe8ffffeafffffff3fffffa" +
            "7fffffabffffffdfffffebfffffecfffffedfffffeefffffefffffff0ffffff1ffffff2fffffffbfffffcffffffd3fff" +
            "ffd7fffffdbfffffdffffffe3fffffe7fffffebfffffed4fe3f9ffaffcabf1febfafefe7fdfd2cbb00089969b71d79fb" +
            "9f7fff20ffbff3ff50ddbd7f061c58f265cd9f469d5af66dddbf871e5f9cff7ff7fffc3ff9ffe45fff4719242cb34e6e" +
            "9d68a6a3d7dac426defe3cfaf7fffbfe7ffbffdffffffcfffe6ffff4bfff9ffffa3fffd3ffff53fffd5ffffb3fffeb7f" +
            "ffdaffffb7ffff73fffeeffffdeffffebffffbfffffd9ffffdbfffebffffe0ffffeeffffc3ffff8bffff1ffffe4fffee" +
            "7fffb1ffff97fffd9ffffcdffff9fffffbffffdafffeeffff4ffffb7fffee7fffe8ffffd3fffdeffffd5fffeeffffbdf" +
            "fffe1fffdfffff7fffff5ffffecffff07fff87fffe0ffff17fffedffff87ffff77fffeffffeaffff8bfffe3ffff93fff" +
            "f87fffcbffff37ffff1fffff83ffffe1fffebfffe3ffff3fffff2ffffa3ffffd9fffff17ffffc7fffff27ffffdefffff" +
            "bffffff2fffff8fffffb7fff97fff8fffffe6fffffc1fffff87ffffe7fffffc5ffffe5fffe4ffff2fffffd1fffff4fff" +
            "fffefffffe3fffffc9fffff97fffb3ffffcffffb7fffcdffff4ffff9ffffd1ffffcffffeaffffafffffddffffeffffff" +
            "4fffff5fffffabffffa7ffffd7fffff9bffffecfffffb7fffff3fffffe8fffffd3fffffabfffff5fffffff7ffffecfff" +
            "ffdbfffffbbfffff7ffffff0fffffbbf"
        let fields = try HPACKFieldDecoder(maxListSize: 1 << 16).decoding(buffer(block))
        XCTAssertEqual(receivedBytes(fields.map(\.value)[0]), Array(0...255))
    }

    /// A name is a token: one with a byte above 0x7F comes out with `?` there, which no token
    /// holds (HTTP2Request then refuses the stream), and the block and the next decode.
    func testANameWithBytesAbove0x7FComesOutRefusable() throws {
        var decoder = HPACKFieldDecoder(maxListSize: 1 << 16)
        // "x-\xe9" added to the table with the value "1", then named by index.
        XCTAssertEqual(pairs(try decoder.decode(buffer("4003782de90131"))), [["x-?", "1"]])
        XCTAssertEqual(pairs(try decoder.decode(buffer("be82"))), [["x-?", "1"], [":method", "GET"]])
        XCTAssertThrowsError(try HTTP2Request.head(HPACKHeaders([(":method", "GET"), (":scheme", "http"), (":path", "/"), ("x-?", "1")]), endStream: true))
    }

    /// Blocks made by swift-nio-http2's encoder (an independent implementation): every way of
    /// indexing, Huffman on and off, over many blocks sharing and evicting one dynamic table.
    func testBlocksFromAnotherEncoderDecodeToWhatItEncoded() throws {
        for huffman in [true, false] {
            var encoder = HPACKEncoder(allocator: ByteBufferAllocator(), useHuffmanEncoding: huffman)
            var decoder = HPACKFieldDecoder(maxListSize: 1 << 20)
            var generator = SystemRandomNumberGenerator()
            for round in 0..<300 {
                var headers = HPACKHeaders()
                headers.add(name: ":method", value: ["GET", "POST", "PATCH"][round % 3])
                headers.add(name: ":path", value: "/items/\(round % 7)?q=\(round)")
                for field in 0..<Int.random(in: 0...12, using: &generator) {
                    let indexing: HPACKIndexing = [.indexable, .nonIndexable, .neverIndexed][field % 3]
                    let value = String(repeating: "v\(round % 5)-é~", count: Int.random(in: 0...40, using: &generator))
                    headers.add(name: "x-field-\(field % 9)", value: value, indexing: indexing)
                }
                var block = ByteBuffer()
                try encoder.encode(headers: headers, to: &block)
                XCTAssertEqual(pairs(try decoder.decode(block)), pairs(headers), "round \(round), Huffman \(huffman)")
            }
        }
    }

    func testBlocksThatBreakTheRulesAreErrors() {
        let broken: [String: String] = [
            "index 0": "80",
            "an index past both tables": "be",
            "a size update over the allowed size": "3fe21f",
            "a size update after a field": "8220",
            "a string past the block's end": "0003782d6105616263",
            "a block ending inside an integer": "0fff",
            "an integer over 2^28": "0fffffffffff7f",
            "the end-of-string code inside a string": "0003782d6184fffffffc",
            "padding of eight bits": "0003782d6181ff",
            "padding that is not all ones": "0003782d618100",
        ]
        for (what, hex) in broken {
            var decoder = HPACKFieldDecoder(maxListSize: 1 << 16)
            XCTAssertThrowsError(try decoder.decode(buffer(hex)), what)
        }
    }

    /// A table size update evicts what no longer fits; the entries it evicted name nothing.
    func testASmallerTableEvictsItsOldestEntries() throws {
        var decoder = HPACKFieldDecoder(maxListSize: 1 << 16)
        // Two entries of 32 + 3 + 1 bytes each: "x-a: 1", then "x-b: 2".
        _ = try decoder.decode(buffer("4003782d6101314003782d620132"))
        XCTAssertEqual(pairs(try decoder.decode(buffer("bfbe"))), [["x-a", "1"], ["x-b", "2"]])
        // Room for one: the older ("x-a", index 63) goes, the newer stays at 62.
        XCTAssertEqual(pairs(try decoder.decode(buffer("3f09be"))), [["x-b", "2"]])
        XCTAssertThrowsError(try decoder.decode(buffer("bf")))
        XCTAssertThrowsError(try decoder.decode(buffer("20be")), "a table of size 0 holds nothing")
    }

    /// Decoding stops once the fields pass the list size (each counted as 32 bytes plus its
    /// name and value), however few bytes named them.
    func testAListPastItsSizeIsAnError() throws {
        var decoder = HPACKFieldDecoder(maxListSize: 200)
        // "x-a: 1" added (36 bytes), then named by index until past 200.
        XCTAssertNoThrow(try decoder.decode(buffer("4003782d6101" + String(repeating: "be", count: 4))))
        XCTAssertThrowsError(try decoder.decode(buffer(String(repeating: "be", count: 6))))
    }
}

extension HPACKFieldDecoder {
    fileprivate func decoding(_ block: ByteBuffer) throws -> HPACKHeaders {
        var decoder = self
        return try decoder.decode(block)
    }
}
