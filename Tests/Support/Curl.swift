import Foundation

/// One HTTP answer as curl saw it.
public struct HTTPAnswer {
    public let status: Int
    /// Lower-cased names; a repeated header keeps its last value.
    public let headers: [String: String]
    public let body: Data

    public var text: String { String(decoding: body, as: UTF8.self) }

    public func json() throws -> [String: Any] {
        guard let object = try JSONSerialization.jsonObject(with: body) as? [String: Any] else {
            throw HarnessError("not a JSON object: \(text)")
        }
        return object
    }
}

/// Runs the real curl and returns the final answer (1xx interim answers skipped).
public func curl(_ arguments: [String], timeout: Int = 15) throws -> HTTPAnswer {
    let directory = FileManager.default.temporaryDirectory
    let headerFile = directory.appendingPathComponent("h-\(UUID().uuidString)")
    let bodyFile = directory.appendingPathComponent("b-\(UUID().uuidString)")
    defer {
        try? FileManager.default.removeItem(at: headerFile)
        try? FileManager.default.removeItem(at: bodyFile)
    }
    let result = try runProgram("/usr/bin/curl", ["-s", "-S", "--max-time", String(timeout), "-D", headerFile.path, "-o", bodyFile.path] + arguments)
    guard result.status == 0 else { throw HarnessError("curl \(arguments) failed (\(result.status)): \(result.output)") }
    let rawHeaders = (try? String(contentsOf: headerFile, encoding: .utf8)) ?? ""
    // The last block is the final answer; earlier ones are 100 Continue and the like.
    let blocks = rawHeaders.components(separatedBy: "\r\n\r\n").filter { !$0.isEmpty }
    guard let last = blocks.last else { throw HarnessError("no headers from curl \(arguments)") }
    let lines = last.components(separatedBy: "\r\n")
    let status = Int(lines[0].split(separator: " ")[1]) ?? 0
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { continue }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    let body = (try? Data(contentsOf: bodyFile)) ?? Data()
    return HTTPAnswer(status: status, headers: headers, body: body)
}

/// Runs a program to completion and returns its exit status and its output (standard output
/// and, unless `stdoutOnly`, standard error).
@discardableResult
public func runProgram(
    _ executable: String,
    _ arguments: [String],
    environment: [String: String] = [:],
    stdoutOnly: Bool = false
) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.merge(environment) { $1 }
    process.environment = env
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = stdoutOnly ? FileHandle.nullDevice : pipe
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Sends raw bytes over TCP and returns everything the server answers before closing (or
/// until `timeout`). For requests no well-behaved client would send.
public func rawExchange(port: Int, _ request: [UInt8], timeout: TimeInterval = 5) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard connected == 0 else { throw HarnessError("connect failed") }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    var received: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = recv(fd, &buffer, buffer.count, 0)
        if count <= 0 { break }
        received += buffer[0..<count]
    }
    return String(decoding: received, as: UTF8.self)
}
