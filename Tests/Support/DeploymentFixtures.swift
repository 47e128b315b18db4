/// The production deployment's configuration (its limiters, the gateway.toml its routes come
/// from) as the tests use it, in one place.
public enum DeploymentFixtures {
    /// The gateway.toml the deployment starts from, exactly.
    public static let gatewayToml = """
        [server]
        listen = "127.0.0.1:${GATEWAY_PORT:-8080}"
        [admin]
        listen = "127.0.0.1:${ADMIN_PORT:-9901}"
        [rate_sync]
        config = "rate-sync.toml"          # relative to this file; RATE_SYNC_CONFIG overrides it
        [upstreams.app]
        url = "http://127.0.0.1:${UPSTREAM_PORT:-8081}"
        \(routes)
        """

    /// Its two routes: auth (/auth/) and public (everything else), by client IP.
    public static let routes = """
        [[routes]]
        name = "auth"
        path_prefix = "/auth/"
        upstream = "app"
        limiters = ["auth"]
        identifier = "client_ip"
        [[routes]]
        name = "public"
        path_prefix = "/"
        upstream = "app"
        limiters = ["public"]
        identifier = "client_ip"
        """

    /// The deployment's two limiters (public: token bucket 100/s fail-open; auth: sliding window
    /// 10 per 300 s fail-closed) on a memory store named "local".
    public static let memoryLimiters = """
        [stores.local]
        strategy = "memory"
        [limiters.public]
        store_id = "local"
        algorithm = "token_bucket"
        rate_per_second = 100.0
        fail_closed = false
        [limiters.auth]
        store_id = "local"
        algorithm = "sliding_window"
        limit = 10
        window_seconds = 300
        fail_closed = true
        """
}
