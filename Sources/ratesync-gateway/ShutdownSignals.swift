import Dispatch
import Foundation

/// Blocks the main thread until SIGTERM or SIGINT arrives.
enum ShutdownSignals {
    static func wait() -> String {
        let received = DispatchSemaphore(value: 0)
        let name = NSLock()
        nonisolated(unsafe) var signalName = ""
        var sources: [any DispatchSourceSignal] = []
        for (number, label) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                name.withLock { signalName = label }
                received.signal()
            }
            source.resume()
            sources.append(source)
        }
        received.wait()
        sources.forEach { $0.cancel() }
        return name.withLock { signalName }
    }
}
