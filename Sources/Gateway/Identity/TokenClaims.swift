import JWTKit

/// A token's payload as plain values: the claims a route may key on (strings, numbers, booleans)
/// and the registered ones the verifier checks. Decoding never fails on a claim's type: a claim
/// no route can key on (an object, a mixed array) is kept as `.other`.
struct TokenClaims: JWTPayload {
    enum Value: Decodable, Equatable {
        case text(String)
        case number(Double)
        case integer(Int64)
        case boolean(Bool)
        case texts([String])
        case other

        init(from decoder: any Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let text = try? container.decode(String.self) {
                self = .text(text)
            } else if let integer = try? container.decode(Int64.self) {
                self = .integer(integer)
            } else if let number = try? container.decode(Double.self) {
                self = .number(number)
            } else if let flag = try? container.decode(Bool.self) {
                self = .boolean(flag)
            } else if let texts = try? container.decode([String].self) {
                self = .texts(texts)
            } else {
                self = .other
            }
        }

        /// The claim as an identifier: strings as they are, numbers in decimal.
        var identifier: String? {
            switch self {
            case .text(let text): return text.isEmpty ? nil : text
            case .integer(let integer): return String(integer)
            case .number(let number): return number.isFinite ? String(number) : nil
            case .boolean(let flag): return String(flag)
            case .texts, .other: return nil
            }
        }

        /// NumericDate claims (`exp`, `nbf`): seconds since the epoch.
        var seconds: Double? {
            switch self {
            case .integer(let integer): return Double(integer)
            case .number(let number): return number
            default: return nil
            }
        }
    }

    private struct Name: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    let values: [String: Value]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Name.self)
        var values: [String: Value] = [:]
        for key in container.allKeys {
            values[key.stringValue] = try container.decode(Value.self, forKey: key)
        }
        self.values = values
    }

    func encode(to encoder: any Encoder) throws {}

    /// Claims are checked synchronously by `TokenVerifier`, on the event loop; jwt-kit's
    /// asynchronous path (which calls this) is not used.
    func verify(using algorithm: some JWTAlgorithm) async throws {}
}
