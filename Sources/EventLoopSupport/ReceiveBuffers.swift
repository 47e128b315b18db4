import NIOCore

/// How a connection reads: how much at once, and so how much memory it keeps between reads.
///
/// NIO keeps a channel's receive buffers for its next reads, as many as it reads per wake-up
/// (`maxMessagesPerRead`), each as large as the adaptive allocator last grew it. With NIO's
/// default ceiling of 64 KiB, a keep-alive connection that once carried a large body keeps four
/// such buffers while it sits idle. Reads of at most 16 KiB (nginx's `client_body_buffer_size`)
/// bound what an idle connection keeps to a quarter of that, for a few more read calls per large
/// body.
public enum ReceiveBuffers {
    /// Reads per wake-up of one connection before the loop serves the others.
    public static let readsPerWakeUp: UInt = 4

    /// Starts at 2 KiB (a typical head), grows to 16 KiB while reads fill it, and shrinks back.
    public static var allocator: AdaptiveRecvByteBufferAllocator {
        AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 16384)
    }
}
