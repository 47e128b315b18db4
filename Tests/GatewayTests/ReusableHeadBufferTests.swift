@testable import Gateway
import NIOCore
import XCTest

/// A head's memory is used again only once the channel let go of the last head written in it.
final class ReusableHeadBufferTests: XCTestCase {
    private let allocator = ByteBufferAllocator()

    private func address(_ buffer: ByteBuffer) -> UnsafeRawPointer? {
        buffer.withVeryUnsafeBytes { $0.baseAddress }
    }

    func testAHeadStillQueuedIsNeverWrittenOverAndAWrittenOnesMemoryIsReused() {
        var reusable = ReusableHeadBuffer()
        var first = reusable.take(allocator)
        first.writeString("HTTP/1.1 200 OK\r\n\r\n")
        var queued: ByteBuffer? = first
        reusable.keep(first)
        let firstAddress = address(first)
        first = ByteBuffer()

        var second = reusable.take(allocator)
        XCTAssertEqual(second.readableBytes, 0)
        second.writeString("HTTP/1.1 404 Not Found\r\n\r\n")
        XCTAssertEqual(queued.map { String(buffer: $0) }, "HTTP/1.1 200 OK\r\n\r\n", "the queued head is untouched")
        XCTAssertNotEqual(address(second), firstAddress)
        reusable.keep(second)
        let secondAddress = address(second)
        second = ByteBuffer()
        queued = nil

        // The channel wrote the second head and let go of it: its memory serves the third.
        var third = reusable.take(allocator)
        XCTAssertEqual(third.readableBytes, 0)
        XCTAssertEqual(address(third), secondAddress)
        third.writeString("x")
        XCTAssertEqual(String(buffer: third), "x")
    }

    func testMemoryThatGrewLargeIsLetGo() {
        var reusable = ReusableHeadBuffer()
        var large = reusable.take(allocator)
        large.writeRepeatingByte(0, count: ReusableHeadBuffer.largestKept + 1)
        reusable.keep(large)
        large = ByteBuffer()
        XCTAssertLessThanOrEqual(reusable.take(allocator).capacity, ReusableHeadBuffer.largestKept, "a fresh buffer, not the large one")
    }
}
