import NIOCore
import EventLoopSupport

/// One timer for all the streams of an HTTP/2 connection.
///
/// Every proxied request needs a deadline (the upstream must start answering in time), and on
/// HTTP/2 each request is a stream with a handler of its own. A timer per stream meant a task
/// scheduled and cancelled on the event loop's heap for every request; here a stream's deadline
/// is an entry in a table and the connection's one timer fires at the nearest of them.
package final class StreamDeadlines {
    private let eventLoop: any EventLoop
    private var timer: ConnectionTimer?
    private var deadlines: [ObjectIdentifier: (handler: any StreamDeadlineHolder, at: NIODeadline)] = [:]

    package init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Calls `handler.deadlineReached()` no later than `deadline`. A nearer arming stands, as
    /// with a connection's ConnectionTimer: told early, the handler arms again for what is left,
    /// while a later deadline put in its place would hold back the nearer one (a stalled
    /// client's send deadline behind a body's idle timeout, say).
    package func arm(_ handler: any StreamDeadlineHolder, at deadline: NIODeadline) {
        let id = ObjectIdentifier(handler)
        if let armed = deadlines[id], armed.at <= deadline { return }
        deadlines[id] = (handler, deadline)
        if timer == nil {
            timer = ConnectionTimer(eventLoop: eventLoop) { [weak self] in self?.fire() }
        }
        timer?.arm(at: deadline)
    }

    /// Forgets the stream; its handler is released.
    package func disarm(_ handler: any StreamDeadlineHolder) {
        deadlines[ObjectIdentifier(handler)] = nil
    }

    /// Tells the streams whose deadline has passed, and re-arms for the nearest of the others.
    private func fire() {
        let now = eventLoop.now
        var due: [any StreamDeadlineHolder] = []
        var next: NIODeadline?
        for entry in deadlines.values {
            if entry.at <= now {
                due.append(entry.handler)
            } else if next.map({ entry.at < $0 }) ?? true {
                next = entry.at
            }
        }
        for handler in due { deadlines[ObjectIdentifier(handler)] = nil }
        if let next { timer?.arm(at: next) }
        for handler in due { handler.deadlineReached() }
    }
}
