/// Header values as Strings that give back the exact bytes received.
///
/// HTTP allows obs-text (bytes 0x80 to 0xFF) in a value, which need not be UTF-8, while a Swift
/// String holds only valid Unicode: decoding such a value as UTF-8 would replace its bytes with
/// U+FFFD and forward something the client never sent. A value that is valid UTF-8 is kept as
/// it is; in one that is not, each byte from 0x80 up stands for itself as one of the last 128
/// code points of Unicode's private use plane 16 (U+10FF80 to U+10FFFF), which the writers turn
/// back into that byte. (A client that sends those code points themselves, as UTF-8, has them
/// forwarded as the single bytes: never a control byte, so never a framing change.)
///
/// Shared by the HTTP/1.1 parser and the HTTP/2 header decoder, whose values take the same path
/// to an upstream.
public enum FieldText {
    @usableFromInline static let escapeBase: UInt32 = 0x10_FF00

    @inlinable
    public static func string(_ bytes: UnsafeRawBufferPointer) -> String {
        if isASCII(bytes) { return String(decoding: bytes, as: UTF8.self) }
        return nonASCIIString(bytes)
    }

    @usableFromInline
    static func nonASCIIString(_ bytes: UnsafeRawBufferPointer) -> String {
        if let text = String(validating: bytes, as: UTF8.self) { return text }
        var scalars = String.UnicodeScalarView()
        for byte in bytes {
            scalars.append(Unicode.Scalar(byte < 0x80 ? UInt32(byte) : escapeBase + UInt32(byte))!)
        }
        return String(scalars)
    }

    @inlinable
    static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var any: UInt8 = 0
        for byte in bytes { any |= byte }
        return any < 0x80
    }

    /// Whether a value's stored bytes hold escaped ones, which the writers turn back (code points
    /// above U+FFFFF all start with 0xF4 in UTF-8).
    @inlinable
    public static func holdsRawBytes(_ utf8: UnsafeRawBufferPointer) -> Bool {
        utf8.contains { $0 >= 0xF4 }
    }

    /// The byte received that `scalar` stands for, if it is an escaped one.
    @inlinable
    public static func escapedByte(_ scalar: Unicode.Scalar) -> UInt8? {
        scalar.value >= escapeBase + 0x80 ? UInt8(truncatingIfNeeded: scalar.value - escapeBase) : nil
    }
}
