import Foundation
import TestSupport
import XCTest

/// docker/Dockerfile, checked without a Docker engine: its builder's Swift can build every
/// manifest the build resolves, and its runtime stage runs the gateway (in a debootstrapped root).
final class DockerImageTests: XCTestCase {
    private let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()

    private struct Version: Comparable, CustomStringConvertible {
        let major: Int
        let minor: Int

        init?(_ text: Substring) {
            let parts = text.split(separator: ".").prefix(2).map { Int($0) }
            guard parts.count >= 1, let major = parts[0] else { return nil }
            self.major = major
            self.minor = parts.count > 1 ? parts[1] ?? 0 : 0
        }

        static func < (a: Version, b: Version) -> Bool { (a.major, a.minor) < (b.major, b.minor) }
        var description: String { "\(major).\(minor)" }
    }

    /// The Swift of the builder image, from `ARG SWIFT_IMAGE=swift:X.Y-...`.
    private func builderSwift() throws -> Version {
        let dockerfile = try String(contentsOf: repository.appendingPathComponent("docker/Dockerfile"), encoding: .utf8)
        let line = try XCTUnwrap(dockerfile.split(separator: "\n").first { $0.hasPrefix("ARG SWIFT_IMAGE=swift:") })
        let tag = line.dropFirst("ARG SWIFT_IMAGE=swift:".count).prefix { $0 != "-" }
        XCTAssertTrue(dockerfile.contains("FROM ${SWIFT_IMAGE} AS build"), "the builder stage uses SWIFT_IMAGE")
        return try XCTUnwrap(Version(tag), String(line))
    }

    /// A manifest's `// swift-tools-version:X.Y`.
    private func toolsVersion(of manifest: URL) throws -> Version {
        let first = try String(contentsOf: manifest, encoding: .utf8).split(separator: "\n").first ?? ""
        let marker = "swift-tools-version:"
        let range = try XCTUnwrap(first.range(of: marker), "\(manifest.path): no tools version")
        let text = first[range.upperBound...].drop { $0 == " " }.prefix { $0.isNumber || $0 == "." }
        return try XCTUnwrap(Version(text), manifest.path)
    }

    /// The manifest a toolchain of `swift` reads in a package directory: the newest
    /// `Package@swift-X.Y.swift` not newer than it, else `Package.swift`.
    private func manifest(in directory: URL, for swift: Version) throws -> URL {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        let candidates = names.compactMap { name -> (Version, String)? in
            guard name.hasPrefix("Package@swift-"), name.hasSuffix(".swift") else { return nil }
            let version = name.dropFirst("Package@swift-".count).dropLast(".swift".count)
            return Version(version).map { ($0, name) }
        }.filter { $0.0 <= swift }.sorted { $0.0 < $1.0 }
        return directory.appendingPathComponent(candidates.last?.1 ?? "Package.swift")
    }

    func testTheBuilderImageSwiftBuildsEveryResolvedManifest() throws {
        let swift = try builderSwift()
        var required = [("Package.swift", try toolsVersion(of: repository.appendingPathComponent("Package.swift")))]
        let checkouts = repository.appendingPathComponent(".build/checkouts")
        let dependencies = try FileManager.default.contentsOfDirectory(atPath: checkouts.path).sorted()
        XCTAssertGreaterThan(dependencies.count, 5, "the build resolved its dependencies into \(checkouts.path)")
        for name in dependencies {
            let directory = checkouts.appendingPathComponent(name)
            required.append((name, try toolsVersion(of: try manifest(in: directory, for: swift))))
        }
        for (name, version) in required {
            XCTAssertLessThanOrEqual(version, swift, "\(name) needs swift-tools-version \(version); the builder image has Swift \(swift)")
        }
        // And no older than the Swift the code is built and tested with here.
        let toolchain = try runProgram("/usr/bin/env", ["swift", "--version"], stdoutOnly: true).output
        let marker = try XCTUnwrap(toolchain.range(of: "Swift version "), toolchain)
        let testedWith = try XCTUnwrap(Version(toolchain[marker.upperBound...].prefix { $0.isNumber || $0 == "." }))
        XCTAssertGreaterThanOrEqual(swift, testedWith, "the builder image's Swift is older than the one the tests run on")
    }

    /// scripts/docker-runtime-check.sh: the runtime stage rebuilt as a debootstrapped root, the
    /// gateway run in it (chroot, as the image's user) against Redis and the demo upstream.
    func testTheRuntimeStageRunsTheGatewayInAMinimalDebianRoot() throws {
        guard getuid() == 0 else { throw XCTSkip("the runtime check needs root (debootstrap, chroot, mount)") }
        guard FileManager.default.isExecutableFile(atPath: "/usr/sbin/debootstrap") else {
            throw XCTSkip("debootstrap is not installed (apt-get install debootstrap; .ci/run does)")
        }
        let script = repository.appendingPathComponent("scripts/docker-runtime-check.sh").path
        let result = try runProgram("/bin/bash", [script])
        XCTAssertEqual(result.status, 0, result.output)
        for line in ["ldd: only glibc, libstdc++ and libgcc", "check: ok", "GET /products: 200",
            "POST /auth/login x11: 200 200 200 200 200 200 200 200 200 200 429", "HEALTHCHECK: healthy",
            "HEALTHCHECK with Redis hung: unhealthy", "docker-runtime-check: ok"]
        {
            XCTAssertTrue(result.output.contains(line), "missing \"\(line)\" in:\n\(result.output)")
        }
    }
}
