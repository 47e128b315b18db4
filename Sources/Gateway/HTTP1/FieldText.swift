import NIOCore

/// Header values as Strings that give back the exact bytes received.
///
/// HTTP allows obs-text (bytes 0x80 to 0xFF) in a value, which need not be UTF-8, while a Swift
/// String holds only valid Unicode: decoding such a value as UTF-8 would replace its bytes with
/// U+FFFD and forward something the client never sent. A value that is valid UTF-8 is kept as
/// it is; in one that is not, each byte from 0x80 up stands for itself as one of the last 128
/// code points of Unicode's private use plane 16 (U+10FF80 to U+10FFFF), which `write` turns back
/// into that byte. (A client that sends those code points themselves, as UTF-8, has them
/// forwarded as the single bytes: never a control byte, so never a framing change.)
enum FieldText {
    private static let escapeBase: UInt32 = 0x10_FF00

    static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        if isASCII(bytes) { return String(decoding: bytes, as: UTF8.self) }
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            scalars.append(Unicode.Scalar(byte < 0x80 ? UInt32(byte) : escapeBase + UInt32(byte))!)
        }
        return String(scalars)
    }

    private static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var any: UInt8 = 0
        for byte in bytes { any |= byte }
        return any < 0x80
    }

    /// Whether a value's stored bytes hold escaped ones, which `write` turns back (code points
    /// above U+FFFFF all start with 0xF4 in UTF-8).
    static func holdsRawBytes(_ utf8: UnsafeRawBufferPointer) -> Bool {
        utf8.contains { $0 >= 0xF4 }
    }

    /// Writes the bytes received of a value whose UTF-8 is `utf8`.
    static func write(_ utf8: UnsafeRawBufferPointer, into buffer: inout ByteBuffer) {
        HTTP1Writer.write(into: &buffer, atMost: utf8.count) { out in write(utf8, into: &out) }
    }

    /// Writes the bytes received of a value whose UTF-8 is `utf8`: at most `utf8.count` bytes
    /// (an escaped byte takes four in UTF-8 and one as received).
    static func write(_ utf8: UnsafeRawBufferPointer, into out: inout OutputCursor) {
        guard holdsRawBytes(utf8) else {
            out.append(utf8)
            return
        }
        for scalar in String(decoding: utf8, as: UTF8.self).unicodeScalars {
            if scalar.value >= escapeBase + 0x80 {
                out.append(UInt8(truncatingIfNeeded: scalar.value - escapeBase))
            } else {
                UTF8.encode(scalar) { out.append($0) }
            }
        }
    }
}
