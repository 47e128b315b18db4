/// Expands `${VAR}` and `${VAR:-default}` in config strings.
///
/// Unlike rate-sync, which leaves an unset `${VAR}` as literal text, an unset variable without a
/// default is an error: a gateway that silently dials the host `${REDIS_URL}` helps nobody.
public struct EnvironmentExpander: Sendable {
    public enum Failure: Error, Equatable {
        case unsetVariable(String)
        case unterminatedReference
        case badVariableName(String)
    }

    private let environment: [String: String]

    public init(environment: [String: String]) {
        self.environment = environment
    }

    public func expand(_ text: String) throws(Failure) -> String {
        guard text.contains("${") else { return text }
        var output = ""
        var rest = Substring(text)
        while let start = rest.range(of: "${") {
            output += rest[rest.startIndex..<start.lowerBound]
            let afterOpen = rest[start.upperBound...]
            guard let close = afterOpen.firstIndex(of: "}") else { throw .unterminatedReference }
            let reference = afterOpen[afterOpen.startIndex..<close]
            output += try resolve(reference)
            rest = afterOpen[afterOpen.index(after: close)...]
        }
        output += rest
        return output
    }

    private func resolve(_ reference: Substring) throws(Failure) -> String {
        let name: Substring
        let fallback: Substring?
        if let separator = reference.range(of: ":-") {
            name = reference[reference.startIndex..<separator.lowerBound]
            fallback = reference[separator.upperBound...]
        } else {
            name = reference
            fallback = nil
        }
        guard Self.isValidName(name) else { throw .badVariableName(String(name)) }
        if let value = environment[String(name)] {
            // `${VAR:-default}` also covers a variable set to the empty string, as in the shell.
            if value.isEmpty, let fallback { return String(fallback) }
            return value
        }
        if let fallback { return String(fallback) }
        throw .unsetVariable(String(name))
    }

    private static func isValidName(_ name: Substring) -> Bool {
        guard let first = name.unicodeScalars.first, first == "_" || first.properties.isAlphabetic else {
            return false
        }
        return name.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }
}
