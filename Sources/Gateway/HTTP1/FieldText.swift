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

    /// Writes `text`'s bytes as they were received.
    static func write(_ text: String, into buffer: inout ByteBuffer) {
        // Code points above U+FFFFF all start with 0xF4 in UTF-8: none, nothing to turn back.
        let plain = text.utf8.withContiguousStorageIfAvailable { bytes in
            !bytes.contains { $0 >= 0xF4 }
        }
        if plain ?? !text.utf8.contains(where: { $0 >= 0xF4 }) {
            buffer.writeString(text)
            return
        }
        for scalar in text.unicodeScalars {
            if scalar.value >= escapeBase + 0x80 {
                buffer.writeInteger(UInt8(truncatingIfNeeded: scalar.value - escapeBase))
            } else {
                buffer.writeString(String(scalar))
            }
        }
    }
}
