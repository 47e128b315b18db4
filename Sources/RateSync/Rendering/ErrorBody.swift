/// JSON bodies of the answers the gateway makes itself, in the shape of rate-sync's FastAPI
/// handler: `{"detail":[{"type":...,"msg":...,"context":{...}}]}`.
public enum ErrorBody {
    public static func rateLimitedMessage(retryAfterSeconds: Int) -> String {
        "Rate limit exceeded. Retry in \(retryAfterSeconds) seconds."
    }

    public static func limiterUnavailableMessage(retryAfterSeconds: Int) -> String {
        "Rate limiter unavailable. Retry in \(retryAfterSeconds) seconds."
    }

    public static func rateLimited(limiterID: String, limit: Int, retryAfterSeconds: Int) -> String {
        detail(
            type: "rate_limit_exceeded",
            message: rateLimitedMessage(retryAfterSeconds: retryAfterSeconds),
            context: "{\"retry_after_seconds\":\(retryAfterSeconds),\"limit\":\(limit),\"limiter\":\(jsonString(limiterID))}"
        )
    }

    public static func limiterUnavailable(limiterID: String, retryAfterSeconds: Int) -> String {
        detail(
            type: "rate_limiter_unavailable",
            message: limiterUnavailableMessage(retryAfterSeconds: retryAfterSeconds),
            context: "{\"retry_after_seconds\":\(retryAfterSeconds),\"limiter\":\(jsonString(limiterID))}"
        )
    }

    /// 400, 404, 502, 504 and the like: a type and a short message, nothing internal.
    public static func simple(type: String, message: String) -> String {
        detail(type: type, message: message, context: nil)
    }

    private static func detail(type: String, message: String, context: String?) -> String {
        var item = "{\"type\":\(jsonString(type)),\"msg\":\(jsonString(message))"
        if let context { item += ",\"context\":\(context)" }
        return "{\"detail\":[\(item)}]}"
    }

    public static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
