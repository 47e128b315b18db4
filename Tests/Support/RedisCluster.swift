import Foundation

/// A real Redis Cluster on loopback (three primaries with a replica each, by default), made with
/// `redis-cli --cluster create`, for one test.
public final class RedisCluster {
    public private(set) var nodes: [RedisServer]

    public init(primaries: Int = 3, replicasPerPrimary: Int = 1) throws {
        let count = primaries * (1 + replicasPerPrimary)
        nodes = try (0..<count).map { _ in
            try RedisServer(port: try Self.portWithFreeBusPort(), extraArguments: [
                "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000",
                "--cluster-require-full-coverage", "no",
                // A replica may take over however long it has been out of touch: the test
                // decides when a primary dies, not the replica's view of its data's age.
                "--cluster-replica-validity-factor", "0",
            ])
        }
        let addresses = nodes.map { "127.0.0.1:\($0.port)" }
        let created = try runProgram(
            "/usr/bin/redis-cli",
            ["--cluster", "create"] + addresses + ["--cluster-replicas", String(replicasPerPrimary), "--cluster-yes"],
            stdoutOnly: true
        )
        guard created.output.contains("All 16384 slots covered") else { throw HarnessError("cluster create: \(created.output)") }
        try TestSupport.waitUntil("the cluster is ready", timeout: 30) {
            try self.nodes.allSatisfy { try $0.cli(["CLUSTER", "INFO"]).contains("cluster_state:ok") }
                && self.primaryPorts().count == primaries
                && self.nodes.filter { (try? $0.cli(["ROLE"]).hasPrefix("slave")) ?? false }.count == primaries * replicasPerPrimary
        }
    }

    /// A free port whose cluster bus port (10000 higher) is a port too, and free.
    private static func portWithFreeBusPort() throws -> Int {
        for _ in 0..<200 {
            let port = try unusedPort()
            guard port + 10000 <= 65535 else { continue }
            let bus = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(bus) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port + 10000).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(bus, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 { return port }
        }
        throw HarnessError("no free port with a free cluster bus port")
    }

    /// A node still running, to ask about the cluster.
    private var anyLiveNode: RedisServer? { nodes.first { $0.process.isRunning } }

    /// The ports of the nodes serving slots now, as a live node sees the cluster.
    public func primaryPorts() throws -> Set<Int> {
        Set(try servingNodes().map(\.port))
    }

    /// `CLUSTER NODES` lines of primaries that serve slots and are not failed: port and ranges.
    private func servingNodes() throws -> [(port: Int, ranges: [ClosedRange<Int>])] {
        guard let node = anyLiveNode else { return [] }
        var serving: [(Int, [ClosedRange<Int>])] = []
        for line in try node.cli(["CLUSTER", "NODES"]).split(separator: "\n") {
            let fields = line.split(separator: " ")
            guard fields.count > 8, fields[2].contains("master"), !fields[2].contains("fail"),
                let port = Int(fields[1].split(separator: "@")[0].split(separator: ":").last ?? "")
            else { continue }
            let ranges = fields[8...].compactMap { range -> ClosedRange<Int>? in
                let bounds = range.split(separator: "-").compactMap { Int($0) }
                guard let low = bounds.first else { return nil }
                return low...(bounds.last ?? low)
            }
            if !ranges.isEmpty { serving.append((port, ranges)) }
        }
        return serving
    }

    /// The slot of a key, as the cluster computes it.
    public func slot(of key: String) throws -> Int {
        Int(try anyLiveNode?.cli(["CLUSTER", "KEYSLOT", key]) ?? "") ?? -1
    }

    /// The node serving `slot` now, as a live node sees it.
    public func owner(of slot: Int) throws -> RedisServer? {
        guard let port = try servingNodes().first(where: { $0.ranges.contains { $0.contains(slot) } })?.port else { return nil }
        return nodes.first { $0.port == port }
    }

    /// The node id of a server (for resharding).
    public func nodeID(of server: RedisServer) throws -> String {
        try server.cli(["CLUSTER", "MYID"])
    }

    public func stop() {
        nodes.forEach { $0.stop() }
    }

    deinit { stop() }
}
