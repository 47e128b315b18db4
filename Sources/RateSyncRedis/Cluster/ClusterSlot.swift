/// Redis Cluster's key-to-slot rule: CRC16 (XMODEM) of the key, or of its hash tag (the part
/// between the first `{` and the next `}`, when not empty), modulo 16384.
enum ClusterSlot {
    static let count = 16384

    static func of(_ key: String) -> Int {
        var bytes = Substring(key).utf8[...]
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")) {
            let rest = bytes[bytes.index(after: open)...]
            if let close = rest.firstIndex(of: UInt8(ascii: "}")), close != rest.startIndex {
                bytes = rest[..<close]
            }
        }
        return crc16(bytes)
    }

    /// The slot of every key whose hash tag is `tag` (which holds no `}`).
    static func of(hashTag tag: Substring.UTF8View) -> Int {
        crc16(tag)
    }

    private static func crc16(_ bytes: Substring.UTF8View) -> Int {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int((crc >> 8) ^ UInt16(byte)) & 0xFF]
        }
        return Int(crc) % count
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 {
            crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1
        }
        return crc
    }
}
