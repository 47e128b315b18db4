import FuzzSupport
import HTTP2Server
import NIOCore
import NIOHPACK

/// libFuzzer's entry point for what a client's bytes reach first on an HTTP/2 connection: the
/// frame reader, HPACK decoding, and the conversion of header blocks into requests and trailers.
///
/// The input's first byte picks the size of the pieces the rest arrives in (reads end anywhere);
/// unless its top bit is set, the connection preface and an empty SETTINGS frame come first, so
/// that the fuzzer spends its time past them. Any frame the reader hands out must respect the
/// bounds it promises; a crash, a hang or a broken bound is a finding.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzHTTP2Frames(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = UnsafeBufferPointer(start: data, count: size)
    guard let control = input.first else { return 0 }
    let piece = Int(control & 0x3F) + 1
    var bytes: [UInt8] = control & 0x80 == 0 ? HTTP2Wire.preface + [0, 0, 0, 4, 0, 0, 0, 0, 0] : []
    bytes += input.dropFirst()

    let maxHeaderBlockBytes = 4096
    var reader = HTTP2FrameReader(maxHeaderBlockBytes: maxHeaderBlockBytes)
    var decoder = HPACKFieldDecoder(maxListSize: 16 * 1024)
    var offset = 0
    reading: while offset < bytes.count {
        var chunk = ByteBuffer(bytes: bytes[offset..<min(bytes.count, offset + piece)])
        offset += chunk.readableBytes
        reader.append(&chunk)
        do {
            while let frame = try reader.next() {
                switch frame {
                case .headers(_, let block, let endStream):
                    precondition(block.readableBytes <= maxHeaderBlockBytes, "a header block over its bound")
                    guard let fields = try? decoder.decode(block) else { break reading }
                    _ = try? HTTP2Request.request(fields, endStream: endStream)
                    _ = try? HTTP2Request.trailers(fields)
                case .data(_, let payload, let flowControlled, _):
                    precondition(payload.readableBytes <= flowControlled, "DATA longer than what it counts for")
                    precondition(flowControlled <= HTTP2Wire.defaultMaxFrameSize, "DATA over the frame size")
                default:
                    break
                }
            }
        } catch {
            // A connection error: the connection would end here.
            break
        }
    }
    return 0
}

#if !FUZZING
/// Without libFuzzer (an ordinary build): replays the inputs named on the command line.
@main
enum ReplayInputs {
    static func main() {
        replayInputs(CommandLine.arguments.dropFirst(), through: fuzzHTTP2Frames)
    }
}
#endif
