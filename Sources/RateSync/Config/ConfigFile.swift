import Foundation

public enum ConfigFile {
    /// The file's text, or a `ConfigError` that says the file cannot be read.
    public static func read(_ path: String) throws(ConfigError) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else {
            let message = FileManager.default.fileExists(atPath: path)
                ? "cannot read the file (is it readable UTF-8 text?)"
                : "no such file"
            throw ConfigError(problems: [ConfigProblem(file: path, path: "", message: message)])
        }
        return text
    }
}
