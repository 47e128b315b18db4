import Foundation

/// A CA and a server certificate signed by it, made by the real openssl in a fresh directory.
public struct TestCertificates {
    public let directory: URL
    public var caCert: String { directory.appendingPathComponent("ca.crt").path }
    public var serverCert: String { directory.appendingPathComponent("server.crt").path }
    public var serverKey: String { directory.appendingPathComponent("server.key").path }

    public init(commonName: String) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("certs-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let dir = directory.path
        let script = """
            set -e
            cd '\(dir)'
            openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=Test CA' -keyout ca.key -out ca.crt 2>/dev/null
            openssl req -newkey rsa:2048 -nodes -subj '/CN=\(commonName)' -keyout server.key -out server.csr 2>/dev/null
            printf 'subjectAltName=DNS:\(commonName),DNS:localhost,IP:127.0.0.1\\n' > san.ext
            openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile san.ext -out server.crt 2>/dev/null
            """
        let result = try runProgram("/bin/sh", ["-c", script])
        guard result.status == 0 else { throw HarnessError("openssl failed: \(result.output)") }
    }

    /// Deletes the directory and everything made in it.
    public func remove() {
        try? FileManager.default.removeItem(at: directory)
    }
}
