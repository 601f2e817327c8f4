// The shared contract fixtures (agents/harness/contract/fixtures/): HARNESS_FIXTURES when the
// script runs the tests inside the chroot, else found relative to this file (swift test on a Mac).
import Foundation
import XCTest
@testable import HarnessCore

enum Fixtures {
    static let dir: URL = {
        if let env = ProcessInfo.processInfo.environment["HARNESS_FIXTURES"] { return URL(fileURLWithPath: env) }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../../contract/fixtures").standardized
    }()

    static func data(_ path: String) throws -> Data { try Data(contentsOf: dir.appendingPathComponent(path)) }

    static func json(_ path: String) throws -> JSONValue { try JSONParser.parse(data(path)) }

    static var manifest: JSONValue { get throws { try json("manifest.json") } }

    static func strings(_ v: JSONValue?) -> [String] {
        guard case .array(let a)? = v else { return [] }
        return a.compactMap { if case .string(let s) = $0 { return s } else { return nil } }
    }

    static func cases(_ v: JSONValue?) -> [(file: String, field: String, raw: Bool)] {
        guard case .array(let a)? = v else { return [] }
        return a.compactMap { c in
            guard case .string(let f)? = c["file"], case .string(let field)? = c["field"] else { return nil }
            return (f, field, c["raw"] == .bool(true))
        }
    }
}

/// Equality as JSON means it: 3 and 3.0 are the same number.
func sameJSON(_ a: JSONValue, _ b: JSONValue) -> Bool {
    switch (a, b) {
    case (.object(let x), .object(let y)):
        return Set(x.keys) == Set(y.keys) && x.keys.allSatisfy { sameJSON(x[$0]!, y[$0]!) }
    case (.array(let x), .array(let y)):
        return x.count == y.count && zip(x, y).allSatisfy { sameJSON($0, $1) }
    default:
        if let p = a.numberValue, let q = b.numberValue { return p == q }
        return a == b
    }
}

/// Where the session tests leave the result documents they produced, so the script can
/// validate them with the Python contract (HARNESS_RESULTS_OUT, set by swift-env.sh).
func keepForPythonValidation(_ data: Data, name: String) {
    guard let out = ProcessInfo.processInfo.environment["HARNESS_RESULTS_OUT"] else { return }
    let dir = URL(fileURLWithPath: out)
    try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try? data.write(to: dir.appendingPathComponent("\(name).json"))
}
