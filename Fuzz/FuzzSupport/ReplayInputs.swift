#if canImport(Glibc)
import Glibc
#endif

/// Runs a libFuzzer entry point over the files named (an ordinary build of a fuzz target has no
/// libFuzzer: this is its main, so that a finding can be replayed under a debugger).
public func replayInputs(_ paths: some Sequence<String>, through entry: (UnsafePointer<UInt8>, Int) -> CInt) {
    for path in paths {
        guard let file = fopen(path, "rb") else {
            print("no such input: \(path)")
            exit(2)
        }
        var contents: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            contents += buffer[0..<count]
        }
        fclose(file)
        contents.append(0)  // never an empty buffer; the input is what precedes it
        _ = contents.withUnsafeBufferPointer { entry($0.baseAddress!, $0.count - 1) }
    }
}
