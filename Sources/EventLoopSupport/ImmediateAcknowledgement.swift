#if canImport(Glibc)
import Glibc
#endif
import NIOCore

extension Channel {
    /// Has the kernel acknowledge the bytes read so far now, not after its delayed-ACK wait
    /// (40 ms or more on a connection it sees as interactive), when this side has nothing to send
    /// that would carry the acknowledgement. A peer that leaves Nagle's algorithm on (TCP_NODELAY
    /// unset, as a plain socket has it) holds its next small write until what it sent last is
    /// acknowledged: the TLS 1.3 client's first request after its Finished, or a message's body
    /// written after its head. One system call; call it only where the peer is known to owe bytes.
    public func acknowledgeReceivedBytesAtOnce() {
        #if canImport(Glibc)
        try? syncOptions?.setOption(ChannelOptions.tcpOption(NIOBSDSocket.Option(rawValue: TCP_QUICKACK)), value: 1)
        #endif
    }
}
