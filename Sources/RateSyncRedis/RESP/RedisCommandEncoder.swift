import CHiredis
import NIOCore

/// Encodes a command with hiredis's formatter (`redisFormatCommandArgv`) into a ByteBuffer.
enum RedisCommandEncoder {
    static func encode(_ arguments: [String], into buffer: inout ByteBuffer) {
        // All arguments in one byte array, so argv points into a single allocation.
        var storage: [UInt8] = [0]
        var offsets: [Int] = []
        var lengths: [Int] = []
        offsets.reserveCapacity(arguments.count)
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            offsets.append(storage.count)
            storage.append(contentsOf: argument.utf8)
            lengths.append(argument.utf8.count)
        }
        storage.withUnsafeBufferPointer { bytes in
            let base = UnsafeRawPointer(bytes.baseAddress!)
            var argv: [UnsafePointer<CChar>?] = offsets.map { (base + $0).assumingMemoryBound(to: CChar.self) }
            var command: UnsafeMutablePointer<CChar>?
            let length = redisFormatCommandArgv(&command, Int32(arguments.count), &argv, lengths)
            guard length > 0, let command else {
                fatalError("hiredis could not format a command (out of memory)")
            }
            buffer.writeBytes(UnsafeRawBufferPointer(start: command, count: Int(length)))
            redisFreeCommand(command)
        }
    }
}
