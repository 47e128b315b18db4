import Dispatch
import Foundation
import NIOConcurrencyHelpers

/// Turns process signals into calls: SIGHUP runs `onReload` (one at a time, off the event
/// loops); SIGTERM or SIGINT ends `run`, returning the signal's name.
enum SignalLoop {
    static func run(onReload: @escaping @Sendable () -> Void) -> String {
        let stop = DispatchSemaphore(value: 0)
        let received = NIOLockedValueBox("")
        let reloads = DispatchQueue(label: "ratesync-gateway.reload")
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT"), (SIGHUP, "SIGHUP")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: number == SIGHUP ? reloads : .global())
            source.setEventHandler {
                if number == SIGHUP {
                    onReload()
                } else {
                    received.withLockedValue { $0 = name }
                    stop.signal()
                }
            }
            source.resume()
            sources.append(source)
        }
        stop.wait()
        sources.forEach { $0.cancel() }
        return received.withLockedValue { $0 }
    }
}
