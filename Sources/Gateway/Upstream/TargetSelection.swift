/// Which target of an upstream a request goes to: a pure value, one per upstream per event loop
/// (its counters are the loop's own), told which targets are in rotation now.
struct TargetSelection {
    let balance: GatewayConfig.Upstream.Balance
    let weights: [Int]
    /// Smooth weighted round robin (nginx's): each pick adds every candidate's weight to its
    /// score, takes the highest and lowers it by the candidates' total, so weights 1, 1, 2 go
    /// a, c, b, c rather than a, b, c, c.
    private var scores: [Int]

    init(balance: GatewayConfig.Upstream.Balance, weights: [Int]) {
        self.balance = balance
        self.weights = weights
        self.scores = Array(repeating: 0, count: weights.count)
    }

    /// - Parameters:
    ///   - available: targets in rotation now and not yet tried by this request. When none is,
    ///     every target not yet tried is a candidate (panic: a false alarm must not be an outage).
    ///   - busy: requests in flight per target (for `least_request`).
    ///   - clientHash: a hash of the client's IP (for `client_ip_hash`).
    ///   - random: a source in 0..<n (injected, for tests).
    /// - Returns: nil only when every target was tried.
    mutating func choose(
        available: [Bool],
        tried: [Int],
        busy: (Int) -> Int,
        clientHash: UInt64,
        random: (Int) -> Int
    ) -> Int? {
        let untried = weights.indices.filter { !tried.contains($0) }
        guard !untried.isEmpty else { return nil }
        let inRotation = untried.filter { available[$0] }
        let candidates = inRotation.isEmpty ? untried : inRotation
        switch balance {
        case .roundRobin:
            let total = candidates.reduce(0) { $0 + weights[$1] }
            var best = candidates[0]
            for index in candidates {
                scores[index] += weights[index]
                if scores[index] > scores[best] { best = index }
            }
            scores[best] -= total
            return best
        case .leastRequest:
            guard candidates.count > 1 else { return candidates[0] }
            let first = candidates[random(candidates.count)]
            var second = candidates[random(candidates.count - 1)]
            if second == first { second = candidates[candidates.count - 1] }
            return busy(second) < busy(first) ? second : first
        case .clientIPHash:
            // The client's place among all targets, so that it keeps its target while that one is
            // in rotation; past a target out of rotation, the next one along.
            let start = Int(clientHash % UInt64(weights.count))
            for step in 0..<weights.count {
                let index = (start + step) % weights.count
                if candidates.contains(index) { return index }
            }
            return candidates[0]
        }
    }

    /// FNV-1a of the client's address text: stable across processes (Swift's Hasher is seeded
    /// per process), so every gateway sends one client to the same target.
    static func hash(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }
}
