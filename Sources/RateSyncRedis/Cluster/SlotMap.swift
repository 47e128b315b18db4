import RateSync

/// Which primary serves each of the 16384 slots, from `CLUSTER SLOTS`.
struct SlotMap {
    private var owners: [RedisAddress?] = Array(repeating: nil, count: ClusterSlot.count)

    var isEmpty: Bool { primaries.isEmpty }

    /// Every primary that serves at least one slot.
    private(set) var primaries: Set<RedisAddress> = []

    func owner(of slot: Int) -> RedisAddress? { owners[slot] }

    /// After `MOVED`: this slot is served elsewhere now (the rest is refreshed separately).
    mutating func move(_ slot: Int, to address: RedisAddress) {
        owners[slot] = address
        primaries.insert(address)
    }

    /// Reads a `CLUSTER SLOTS` reply: `[[start, end, [host, port, id, ...], replicas...], ...]`.
    /// A node that announces an empty host is reached at `fallbackHost` (the address we asked).
    init?(clusterSlots reply: RedisValue, fallbackHost: String) {
        guard case .array(let ranges) = reply else { return nil }
        for range in ranges {
            guard case .array(let fields) = range, fields.count >= 3,
                let start = fields[0].integer, let end = fields[1].integer,
                (0..<ClusterSlot.count).contains(start), (start..<ClusterSlot.count).contains(end),
                case .array(let node) = fields[2], node.count >= 2,
                let host = node[0].string, let port = node[1].integer
            else { return nil }
            let address = RedisAddress(host: host.isEmpty || host == "?" ? fallbackHost : host, port: port)
            for slot in start...end { owners[slot] = address }
            primaries.insert(address)
        }
    }

    init() {}
}

/// `MOVED <slot> <host:port>` and `ASK <slot> <host:port>`.
enum ClusterRedirect: Equatable {
    case moved(slot: Int, to: RedisAddress)
    case ask(slot: Int, to: RedisAddress)

    init?(_ message: String) {
        let parts = message.split(separator: " ")
        // The address is `ip:port`, an IPv6 ip unbracketed: the port follows the last colon.
        guard parts.count == 3, let slot = Int(parts[1]), let colon = parts[2].lastIndex(of: ":"),
            let port = Int(parts[2][parts[2].index(after: colon)...])
        else { return nil }
        let address = RedisAddress(host: String(parts[2][..<colon]), port: port)
        switch parts[0] {
        case "MOVED": self = .moved(slot: slot, to: address)
        case "ASK": self = .ask(slot: slot, to: address)
        default: return nil
        }
    }
}
