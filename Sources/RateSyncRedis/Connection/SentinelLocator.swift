import NIOCore
import NIOSSL
import RateSync

/// Finds a Sentinel-managed primary: asks the sentinels in order (`SENTINEL
/// GET-MASTER-ADDR-BY-NAME`) until one names it. The caller then checks the named server's
/// `ROLE` itself, since a sentinel can lag behind a failover.
enum SentinelLocator {
    static func locatePrimary(
        settings: RedisStoreSettings,
        sentinel: SentinelSettings,
        tls: NIOSSLContext?,
        on eventLoop: any EventLoop,
        _ completion: @escaping (Result<RedisAddress, RedisConnectError>) -> Void
    ) {
        let timeout = TimeAmount(seconds: settings.socketTimeout)
        var failures: [String] = []
        func ask(_ index: Int) {
            guard index < sentinel.sentinels.count else {
                completion(.failure(.connect("no sentinel named primary \"\(sentinel.masterName)\" (\(failures.joined(separator: "; ")))")))
                return
            }
            let address = sentinel.sentinels[index]
            RedisConnection.open(settings: sentinelSide(settings, sentinel), address: address, tls: tls, on: eventLoop) { result in
                switch result {
                case .failure(let error):
                    failures.append("sentinel \(address): \(error)")
                    ask(index + 1)
                case .success(let connection):
                    connection.send(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", sentinel.masterName], timeout: timeout)
                        .assumeIsolated().whenComplete { reply in
                            connection.close()
                            if case .success(.array(let parts)) = reply, parts.count == 2,
                                let host = parts[0].string, let port = parts[1].integer
                            {
                                completion(.success(RedisAddress(host: host, port: port)))
                            } else {
                                failures.append("sentinel \(address) does not know it")
                                ask(index + 1)
                            }
                        }
                }
            }
        }
        ask(0)
    }

    /// The settings a connection to a sentinel uses: its own password, no database.
    static func sentinelSide(_ settings: RedisStoreSettings, _ sentinel: SentinelSettings) -> RedisStoreSettings {
        var side = settings
        side.url.username = nil
        side.url.password = sentinel.password
        side.url.database = nil
        return side
    }
}
