import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

// The demo upstream: a small HTTP/1.1 server that the README's tour, the benchmarks and the
// end-to-end tests put behind the gateway.
//
//   GET /bench                 "ok\n" (the cheapest possible answer, for load tests)
//   ANY /anything              JSON echo: method, uri, headers, bytes of body received
//   ?bytes=N                   a body of N bytes, streamed with backpressure
//   ?delay_ms=N                answer after N ms
//   ?drop=1                    close the connection without answering
//
// Every answer carries X-Upstream-Connection (a per-connection number) and
// X-Upstream-Request (the request's number on that connection), to observe keep-alive reuse.

let arguments = CommandLine.arguments
func argument(_ name: String, default value: String) -> String {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return value }
    return arguments[index + 1]
}

let host = argument("--host", default: "127.0.0.1")
let port = Int(argument("--port", default: "8081")) ?? 8081
let threads = Int(argument("--threads", default: "1")) ?? 1

let connectionCounter = ManagedAtomicCounter()

let group = MultiThreadedEventLoopGroup(numberOfThreads: threads)
let channel = try ServerBootstrap(group: group)
    .serverChannelOption(.backlog, value: 1024)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline()
            try channel.pipeline.syncOperations.addHandler(DemoHandler(connectionID: connectionCounter.next()))
        }
    }
    .bind(host: host, port: port)
    .wait()

FileHandle.standardOutput.write(Data("ratesync-demo-upstream listening on \(channel.localAddress!)\n".utf8))
try channel.closeFuture.wait()
