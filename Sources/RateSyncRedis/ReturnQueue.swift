import NIOCore

/// Gives back what requests of one client loop took and no longer need: `max_concurrent` slots
/// when their requests end, and the reservations of waiting requests whose clients left. What
/// one tick gives back goes in one script call, as the checks of a tick do; a call that fails
/// (a timeout, a failover) is tried again, with growing pauses, for as long as it still matters:
/// a slot until its lease runs out (then the next check reclaims it anyway).
///
/// Only returns that are safe to repeat are tried again: a slot named by its lease (the release
/// removes the lease first, so a second one finds nothing) and window entries named by their
/// member. Moving a token bucket's arrival time back is not: a call whose answer was lost may
/// have run, so it is sent once.
final class ReturnQueue {
    enum Item: Sendable {
        case slot(counter: String, leases: String, holder: String)
        case reservation(key: String, arguments: [String])

        /// Whether running it twice is the same as running it once.
        var repeatable: Bool {
            switch self {
            case .slot(_, _, let holder): return !holder.isEmpty
            case .reservation(_, let arguments): return arguments.first == "s"
            }
        }
    }

    private struct Pending {
        let item: Item
        /// Past this, trying again is pointless.
        let until: NIODeadline
        var attempts = 0
    }

    private let eventLoop: any EventLoop
    private var pending: [Pending] = []
    private var stopped = false
    /// Weak: the store owns this queue.
    weak var sender: (any ReturnSender)?

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Must be called on the queue's loop.
    func submit(_ item: Item, keepTryingFor seconds: Double) {
        enqueue(Pending(item: item, until: .now() + .nanoseconds(Int64(seconds * 1e9))))
    }

    func stop() {
        stopped = true
        pending = []
    }

    private func enqueue(_ entry: Pending) {
        guard !stopped else { return }
        if pending.isEmpty {
            eventLoop.assumeIsolated().execute { self.flush() }
        }
        pending.append(entry)
    }

    private func flush() {
        let batch = pending
        pending = []
        guard !batch.isEmpty, let sender else { return }
        let (keys, arguments) = Self.keysAndArguments(batch.map(\.item))
        sender.sendReturns(keys: keys, arguments: arguments, on: eventLoop).assumeIsolated().whenComplete { result in
            if case .success(true) = result { return }
            self.retry(batch)
        }
    }

    private func retry(_ batch: [Pending]) {
        let now = NIODeadline.now()
        for var entry in batch where entry.item.repeatable && entry.until > now {
            entry.attempts += 1
            // 50 ms, 100 ms, ... up to 2 s between tries.
            let pause = TimeAmount.milliseconds(Int64(min(2_000, 50 << min(entry.attempts - 1, 6))))
            eventLoop.assumeIsolated().scheduleTask(in: pause) { self.enqueue(entry) }
        }
    }

    /// KEYS: two per item (a reservation's key twice); ARGV: the count, then four per item.
    static func keysAndArguments(_ items: [Item]) -> (keys: [String], arguments: [String]) {
        var keys: [String] = []
        var arguments = [String(items.count)]
        keys.reserveCapacity(items.count * 2)
        arguments.reserveCapacity(1 + items.count * 4)
        for item in items {
            switch item {
            case .slot(let counter, let leases, let holder):
                keys += [counter, leases]
                arguments += ["r", holder, "", ""]
            case .reservation(let key, let reservationArguments):
                keys += [key, key]
                arguments += reservationArguments
            }
        }
        return (keys, arguments)
    }

    /// Runs the items of one call in order: `r` gives back a slot (never below zero; nothing when
    /// its lease already ran out and was reclaimed), `t` moves a bucket's TAT back `cost`
    /// intervals, `s` removes a waiting admission's window entries.
    static let source = """
        #!lua
        local n = tonumber(ARGV[1])
        for i = 1, n do
          local kind, x, y, z = ARGV[i * 4 - 2], ARGV[i * 4 - 1], ARGV[i * 4], ARGV[i * 4 + 1]
          local key, second = KEYS[i * 2 - 1], KEYS[i * 2]
          if kind == 'r' then
            -- read before any write: a key of another type fails the call before it changes anything
            local in_flight = tonumber(redis.call('GET', key) or '0') or 0
            if (x == '' or redis.call('ZREM', second, x) == 1) and in_flight > 0 then
              redis.call('DECR', key)
            end
          elseif kind == 't' then
            local stored = redis.call('GET', key)
            if stored then
              redis.call('SET', key, string.format('%.6f', tonumber(stored) - tonumber(x) * tonumber(y)), 'KEEPTTL')
            end
          else
            local cost = tonumber(y)
            if cost == 1 then
              redis.call('ZREM', key, z)
            else
              for u = 1, cost do redis.call('ZREM', key, z .. ':' .. u) end
            end
          end
        end
        return n
        """
}

/// A store that runs `ReturnQueue.source` on its connection of a loop.
protocol ReturnSender: AnyObject {
    /// Whether Redis ran the call.
    func sendReturns(keys: [String], arguments: [String], on eventLoop: any EventLoop) -> EventLoopFuture<Bool>
}
