/// Redis Cluster's key-to-slot rule: CRC16 (XMODEM) of the key, or of its hash tag (the part
/// between the first `{` and the next `}`, when not empty), modulo 16384.
enum ClusterSlot {
    static let count = 16384

    static func of(_ key: String) -> Int {
        var key = key
        return key.withUTF8 { bytes in
            guard let open = bytes.firstIndex(of: UInt8(ascii: "{")) else { return crc16(bytes) }
            let rest = UnsafeBufferPointer(rebasing: bytes[(open + 1)...])
            guard let close = rest.firstIndex(of: UInt8(ascii: "}")), close != 0 else { return crc16(bytes) }
            return crc16(UnsafeBufferPointer(rebasing: rest[..<close]))
        }
    }

    /// The slot of every key whose hash tag is `tag`; nil when `tag` holds a `}` (which would
    /// end the tag early) or is empty (then no tag at all).
    static func of(hashTag tag: Substring) -> Int? {
        var tag = tag
        return tag.withUTF8 { bytes in
            guard !bytes.isEmpty, !bytes.contains(UInt8(ascii: "}")) else { return nil }
            return crc16(bytes)
        }
    }

    private static func crc16(_ bytes: UnsafeBufferPointer<UInt8>) -> Int {
        var crc: UInt16 = 0
        table.withUnsafeBufferPointer { table in
            for byte in bytes {
                crc = (crc << 8) ^ table[Int((crc >> 8) ^ UInt16(byte)) & 0xFF]
            }
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
