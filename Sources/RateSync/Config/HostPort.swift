/// Splits `host:port` or `[v6]:port` (the forms listen addresses, sentinels and cluster nodes
/// are written in); nil when the text is neither or the port is not a number.
public enum HostPort {
    public static func split(_ text: String) -> (host: String, port: Int)? {
        let hostPart: Substring
        let portPart: Substring
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]"), text[text.index(after: close)...].hasPrefix(":") else {
                return nil
            }
            hostPart = text[text.index(after: text.startIndex)..<close]
            portPart = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { return nil }
            hostPart = text[..<colon]
            guard !hostPart.contains(":") else { return nil }
            portPart = text[text.index(after: colon)...]
        }
        guard !hostPart.isEmpty, let port = Int(portPart), (0...65535).contains(port) else { return nil }
        return (String(hostPart), port)
    }
}
