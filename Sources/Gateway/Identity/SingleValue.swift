/// What a request says about one identity part that it must say exactly once.
enum SingleValue: Equatable {
    case none
    case one(String)
    /// More than once: which value an upstream acts on is not ours to guess.
    case repeated
}
