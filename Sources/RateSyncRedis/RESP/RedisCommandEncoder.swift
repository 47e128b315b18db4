import NIOCore

/// Encodes a command as a RESP array of bulk strings, written straight into the connection's
/// buffer: `*<count>\r\n`, then `$<length>\r\n<bytes>\r\n` per argument.
///
/// Written here rather than by hiredis's formatter, which printed every length with sprintf
/// and needed the arguments copied into one C array first: for the limit script's hundreds of
/// arguments per call, that was most of what a decision cost the gateway.
enum RedisCommandEncoder {
    static func encode(_ arguments: [String], into buffer: inout ByteBuffer) {
        var size = 16
        for argument in arguments { size += argument.utf8.count + 16 }
        buffer.reserveCapacity(minimumWritableBytes: size)
        buffer.writeInteger(UInt8(ascii: "*"))
        writeDecimal(arguments.count, into: &buffer)
        writeLineEnd(into: &buffer)
        for argument in arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            writeDecimal(argument.utf8.count, into: &buffer)
            writeLineEnd(into: &buffer)
            buffer.writeString(argument)
            writeLineEnd(into: &buffer)
        }
    }

    private static func writeLineEnd(into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt16(0x0D0A))
    }

    /// A non-negative integer in decimal, without building a String.
    private static func writeDecimal(_ value: Int, into buffer: inout ByteBuffer) {
        if value < 10 {
            buffer.writeInteger(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        var remaining = value
        withUnsafeMutableBytes(of: &digits) { bytes in
            while remaining > 0 {
                count += 1
                bytes[24 - count] = UInt8(ascii: "0") + UInt8(remaining % 10)
                remaining /= 10
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[(24 - count)...]))
        }
    }
}
