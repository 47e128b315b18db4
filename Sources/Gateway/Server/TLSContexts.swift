import NIOSSL

/// TLS contexts built from config: once per listener or upstream, never per connection.
public enum TLSContexts {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The listener's context: the PEM chain and key, ALPN offering h2 then http/1.1.
    public static func server(_ settings: GatewayConfig.TLSSettings) throws -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            chain = try NIOSSLCertificate.fromPEMFile(settings.certificatePath)
        } catch {
            throw Failure(description: "server.tls.cert: cannot load a PEM certificate chain from \(settings.certificatePath) (\(error))")
        }
        guard !chain.isEmpty else {
            throw Failure(description: "server.tls.cert: no certificate in \(settings.certificatePath)")
        }
        do {
            key = try NIOSSLPrivateKey(file: settings.keyPath, format: .pem)
        } catch {
            throw Failure(description: "server.tls.key: cannot load a PEM private key from \(settings.keyPath) (\(error))")
        }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) },
            privateKey: .privateKey(key)
        )
        configuration.applicationProtocols = ["h2", "http/1.1"]
        configuration.minimumTLSVersion = settings.minimumVersion == "1.3" ? .tlsv13 : .tlsv12
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw Failure(description: "server.tls: the certificate and key do not make a usable TLS context (\(error))")
        }
    }

    /// An https upstream's context: the system trust store, or `ca_file`; no verification only
    /// when `insecure_skip_tls_verify` says so.
    public static func upstream(_ upstream: GatewayConfig.Upstream) throws -> NIOSSLContext? {
        guard upstream.useTLS else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let caFile = upstream.caFile {
            configuration.trustRoots = .file(caFile)
        }
        if upstream.insecureSkipTLSVerify {
            configuration.certificateVerification = .none
        }
        configuration.applicationProtocols = upstream.wireProtocol == .h2 ? ["h2"] : ["http/1.1"]
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            throw Failure(description: "upstreams.\(upstream.name): cannot set up TLS (\(error))")
        }
    }
}
