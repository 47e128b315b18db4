import NIOCore
import SwiftShims

/// Objects that live as long as the process, marked so with the Swift runtime's own mark for
/// an object that is never freed (`_swift_stdlib_immortalize`, which it gives the empty array
/// and set): from then on a retain or release of one reads its count and returns, where it
/// otherwise writes the count with a locked read-modify-write. An event loop is retained and
/// released dozens of times per request (every `eventLoop` a channel, a context or a promise
/// hands out, and SwiftNIO's own checks of a channel's state).
public enum ProcessLifetime {
    /// The count's top bit: set when the count lives in a side table (the object has had a weak
    /// reference) or is already immortal. Marking an object with a side table would overwrite
    /// the table's address, so such an object is left as it is.
    private static let usesSlowCount: UInt64 = 1 << 63

    /// Marks every loop of `group` as never freed; for a group that lives until the process
    /// exits (its loops' threads end at shutdown as before; only their objects stay).
    public static func keepLoopsForever(of group: any EventLoopGroup) {
        for loop in group.makeIterator() {
            keepForever(loop)
        }
    }

    /// Marks `object` as never freed, unless its count is in a side table or it is marked
    /// already. Called before any other thread may take a weak reference to it (that would move
    /// its count to a side table between the check and the mark).
    /// - Returns: whether this call marked it.
    @discardableResult
    public static func keepForever(_ object: AnyObject) -> Bool {
        // The count read below is the 64-bit platforms' layout; elsewhere nothing is marked.
        guard MemoryLayout<UnsafeRawPointer>.size == 8 else { return false }
        let pointer = Unmanaged.passUnretained(object).toOpaque()
        // A heap object starts with its type's address, then its inline count.
        let count = pointer.load(fromByteOffset: MemoryLayout<UnsafeRawPointer>.size, as: UInt64.self)
        guard count & usesSlowCount == 0 else { return false }
        _swift_stdlib_immortalize(pointer)
        return true
    }
}
