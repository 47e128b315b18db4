import NIOCore

/// Encodes a command as a RESP array of bulk strings, written straight into the connection's
/// buffer: `*<count>\r\n`, then `$<length>\r\n<bytes>\r\n` per argument.
///
/// Written here rather than by hiredis's formatter, which printed every length with sprintf
/// and needed the arguments copied into one C array first: for the limit script's hundreds of
/// arguments per call, that was most of what a decision cost the gateway. The whole command is
/// written into one reservation of the buffer's memory, so that an argument costs a copy of its
/// bytes rather than a capacity check and an index update per piece.
enum RedisCommandEncoder {
    static func encode(_ arguments: [String], into buffer: inout ByteBuffer) {
        // Each argument: `$`, at most 20 digits, CRLF, its bytes, CRLF.
        var size = 1 + 20 + 2
        for argument in arguments { size += argument.utf8.count + 25 }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { memory in
            var output = Output(memory)
            output.append(UInt8(ascii: "*"))
            output.appendDecimal(arguments.count)
            output.appendLineEnd()
            for argument in arguments {
                output.append(UInt8(ascii: "$"))
                output.appendDecimal(argument.utf8.count)
                output.appendLineEnd()
                output.append(argument)
                output.appendLineEnd()
            }
            return output.written
        }
    }

    /// Appends into memory reserved for the whole command (the caller sized it).
    private struct Output {
        private let base: UnsafeMutableRawPointer
        private(set) var written = 0

        init(_ memory: UnsafeMutableRawBufferPointer) {
            // `size` above is never zero, so the reservation has a base address.
            base = memory.baseAddress!
        }

        mutating func append(_ byte: UInt8) {
            base.storeBytes(of: byte, toByteOffset: written, as: UInt8.self)
            written += 1
        }

        mutating func appendLineEnd() {
            append(UInt8(ascii: "\r"))
            append(UInt8(ascii: "\n"))
        }

        mutating func append(_ text: String) {
            var text = text
            text.withUTF8 { bytes in
                guard let source = bytes.baseAddress else { return }
                (base + written).copyMemory(from: source, byteCount: bytes.count)
                written += bytes.count
            }
        }

        /// A non-negative integer in decimal, without building a String.
        mutating func appendDecimal(_ value: Int) {
            var digits = 1
            var rest = value / 10
            while rest > 0 {
                digits += 1
                rest /= 10
            }
            var remaining = value
            for offset in stride(from: written + digits - 1, through: written, by: -1) {
                base.storeBytes(of: UInt8(ascii: "0") + UInt8(remaining % 10), toByteOffset: offset, as: UInt8.self)
                remaining /= 10
            }
            written += digits
        }
    }
}
