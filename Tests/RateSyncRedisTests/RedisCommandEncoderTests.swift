import CHiredis
import NIOCore
import XCTest

@testable import RateSyncRedis

/// The gateway's RESP command encoder against hiredis's formatter, byte for byte.
final class RedisCommandEncoderTests: XCTestCase {
    private func hiredis(_ arguments: [String]) -> [UInt8] {
        var storage: [[CChar]] = arguments.map { Array($0.utf8CString.dropLast()) }
        var lengths = arguments.map { $0.utf8.count }
        var command: UnsafeMutablePointer<CChar>?
        let length = storage.withUnsafeMutableBufferPointer { buffers -> Int32 in
            var argv: [UnsafePointer<CChar>?] = buffers.map { $0.withUnsafeBufferPointer { $0.baseAddress } }
            return redisFormatCommandArgv(&command, Int32(arguments.count), &argv, &lengths)
        }
        defer { redisFreeCommand(command) }
        return Array(UnsafeRawBufferPointer(start: command, count: Int(length)))
    }

    private func encoded(_ arguments: [String]) -> [UInt8] {
        var buffer = ByteBuffer()
        RedisCommandEncoder.encode(arguments, into: &buffer)
        return Array(buffer.readableBytesView)
    }

    func testCommandsAreEncodedAsHiredisWouldByteForByte() {
        XCTAssertEqual(encoded(["PING"]), Array("*1\r\n$4\r\nPING\r\n".utf8))
        let shapes: [[String]] = [
            ["EVALSHA", "abc", "0"],
            ["SET", "", "value with spaces\r\nand a line end"],
            ["SET", "{ключ}:ünïcödé", "🙂"],
            ["ECHO", String(repeating: "x", count: 9), String(repeating: "y", count: 10), String(repeating: "z", count: 123_456)],
            Array(repeating: "a", count: 10) + Array(repeating: "bb", count: 1_000),
        ]
        for arguments in shapes {
            XCTAssertEqual(encoded(arguments), hiredis(arguments), "\(arguments.prefix(3))")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let arguments = (0..<Int.random(in: 1...40, using: &generator)).map { _ in
                String((0..<Int.random(in: 0...30, using: &generator)).map { _ in Character(UnicodeScalar(UInt8.random(in: 32...126, using: &generator))) })
            }
            XCTAssertEqual(encoded(arguments), hiredis(arguments))
        }
    }

    /// Pipelined commands go one after the other into one buffer, and a copy of the buffer taken
    /// before (a write still queued) keeps its bytes.
    func testCommandsFollowOneAnotherAndLeaveCopiesAlone() {
        let first = ["EVALSHA", String(repeating: "f", count: 40), "1", "key"]
        let second = ["PING"]
        var buffer = ByteBuffer()
        RedisCommandEncoder.encode(first, into: &buffer)
        let queued = buffer
        RedisCommandEncoder.encode(second, into: &buffer)
        XCTAssertEqual(Array(buffer.readableBytesView), hiredis(first) + hiredis(second))
        XCTAssertEqual(Array(queued.readableBytesView), hiredis(first))
    }
}
