import NIOCore

/// The Swift runtime's own way to mark an object that is never freed (it does so for the
/// empty array and set): from then on a retain or release of it reads its count and returns,
/// where it otherwise writes the count with a locked read-modify-write. An event loop is
/// retained and released dozens of times per request (every `eventLoop` a channel, a context
/// or a promise hands out), and it lives as long as the process.
@_silgen_name("_swift_stdlib_immortalize")
private func swiftImmortalize(_ object: UnsafeMutableRawPointer)

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

    /// Marks `object` as never freed, unless its count is in a side table.
    /// - Returns: whether it is now marked.
    @discardableResult
    public static func keepForever(_ object: AnyObject) -> Bool {
        let pointer = Unmanaged.passUnretained(object).toOpaque()
        // A heap object starts with its type's address, then its inline count.
        let count = pointer.load(fromByteOffset: MemoryLayout<UnsafeRawPointer>.size, as: UInt64.self)
        guard count & usesSlowCount == 0 else { return false }
        swiftImmortalize(pointer)
        return true
    }
}
