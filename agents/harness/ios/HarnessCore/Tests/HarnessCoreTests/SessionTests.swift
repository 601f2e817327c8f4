// The run sequence end to end on Linux: a real Documents/ directory, a real program file whose
// hash is checked, a plain-Swift program runner in place of ExecuTorch (which has no Linux
// Swift binding), and the result.json the session writes.
import Foundation
import XCTest
@testable import HarnessCore

/// A stand-in for the ExecuTorch module: a 10-class "classifier" summing input strides.
final class PlainRunner: ProgramRunner {
    enum Mode { case ok, nan, throwOnLoad(Int), throwOnForward(Int), hang(Double) }
    let mode: Mode
    var runtimeVersion: String { "1.5.1" }
    var backends: Set<String> { ["XnnpackBackend", "CoreMLBackend"] }
    private(set) var loadedComputeUnits: String?

    init(_ mode: Mode) { self.mode = mode }

    func load(programAt url: URL, job: Job) throws {
        if case .throwOnLoad(let code) = mode {
            throw HarnessError(ExecuTorchErrorCode.category(code: code, at: .load), "load failed with \(code)")
        }
        loadedComputeUnits = job.computeUnits
    }

    func forward(input: UnsafeMutableBufferPointer<Float>, shape: [Int]) throws -> (values: [Float], shape: [Int]) {
        switch mode {
        case .throwOnForward(let code):
            throw HarnessError(ExecuTorchErrorCode.category(code: code, at: .execute), "forward failed with \(code)")
        case .hang(let s): Thread.sleep(forTimeInterval: s)
        default: break
        }
        var out = [Float](repeating: 0, count: 10)
        for (i, v) in input.enumerated() { out[i % 10] += v }
        if case .nan = mode { out[7] = .nan; out[8] = .infinity }
        return (out, [1, 10])
    }
}

struct FixedProbe: DeviceProbe {
    var producerVersion: String { "1.1.0" }
    func identity() -> [String: String] { ["model": "iPhone16,1", "os": "iOS", "os_version": "18.1", "name": "linux-test"] }
    func thermalState() -> String { "nominal" }
    func battery() -> Battery? { Battery(level: 80, charging: true) }
    func footprint() -> (current: UInt64, peak: UInt64) { (1000, 2000) }
}

final class SessionTests: XCTestCase {
    var docs: URL!
    let program = Data((0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31) })

    override func setUpWithError() throws {
        docs = FileManager.default.temporaryDirectory.appendingPathComponent("harness-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: docs, withIntermediateDirectories: true)
        try program.write(to: docs.appendingPathComponent("tiny_cnn.xnnpack.pte"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: docs) }

    func writeJob(_ edit: (inout [String: JSONValue]) -> Void = { _ in }) throws {
        guard case .object(var o) = try Fixtures.json("job/valid/minimal.json") else { return XCTFail("fixture") }
        o["model_sha256"] = .string(SHA256Digest.hex(program))
        o["warmup"] = .int(2)
        o["iterations"] = .int(5)
        o["timeout_s"] = .int(60)
        o["input_shape"] = .array([1, 3, 16, 16].map { .int($0) })
        edit(&o)
        try JSONWriter.data(.object(o)).write(to: docs.appendingPathComponent("job.json"))
    }

    func run(_ runner: PlainRunner, name: String, onTimeout: @escaping (Int32) -> Void = { _ in }) throws -> (Int32, JSONValue) {
        let session = BenchmarkSession(documents: docs, runner: runner, probe: FixedProbe(),
                                       preprocessor: PortablePreprocessor(frameWidth: 64, frameHeight: 36),
                                       onTimeout: onTimeout)
        let code = session.run()
        let data = try Data(contentsOf: docs.appendingPathComponent("result.json"))
        keepForPythonValidation(data, name: name)
        let doc = try JSONParser.parse(data)
        _ = try ResultDocument.decode(doc)
        return (code, doc)
    }

    func testOkRunRecordsEverySampleRuntimeVersionAndGoldenOutput() throws {
        try writeJob { $0["compute_units"] = .string("cpu_and_ne") }
        let runner = PlainRunner(.ok)
        let (code, doc) = try run(runner, name: "session_ok")
        XCTAssertEqual(code, 0)
        XCTAssertEqual(doc["status"], .string("ok"))
        XCTAssertEqual(doc["runtime_version"], .string("1.5.1"))
        XCTAssertEqual(runner.loadedComputeUnits, "cpu_and_ne")
        guard case .array(let lat)? = doc["latencies_ms"], case .array(let warm)? = doc["warmup_latencies_ms"],
              case .array(let pre)? = doc["preprocess_ms"] else { return XCTFail("samples missing") }
        XCTAssertEqual(lat.count, 5)
        XCTAssertEqual(warm.count, 2)
        XCTAssertEqual(pre.count, 5)
        // the seed's frame budget: every stage summarised over the timed iterations
        let fp = try XCTUnwrap(doc["frame_pipeline"])
        XCTAssertEqual(fp["iterations"], .int(5))
        XCTAssertEqual(fp["frame"]?["width"], .int(64))
        XCTAssertEqual(fp["inference_ms"], FramePipeline.times(lat.compactMap { $0.numberValue }))
        XCTAssertEqual(fp["preprocess_ms"], FramePipeline.times(pre.compactMap { $0.numberValue }))
        XCTAssertEqual(doc["error"], .null)
        XCTAssertEqual(doc["energy_mj_per_inference"], .null)
        // the output block is the golden pass: the same digest the Python contract computes
        var expected = [Float](repeating: 0, count: 10)
        for (i, v) in Golden.input(count: 768, seed: 1234).enumerated() { expected[i % 10] += v }
        XCTAssertEqual(doc["output"]?["digest"], .string(OutputSummary(expected, shape: [1, 10]).digest))
    }

    func testNonFiniteOutputIsAnErrorResultNotACrash() throws {
        try writeJob()
        let (code, doc) = try run(PlainRunner(.nan), name: "session_nonfinite")
        XCTAssertEqual(code, 1)
        XCTAssertEqual(doc["status"], .string("error"))
        XCTAssertEqual(doc["error"]?["category"], .string("runtime_error"))
        XCTAssertNil(doc["output"]?["head"])
        XCTAssertNotNil(doc["latencies_ms"])
    }

    func testHostileJobsGiveBadJobWithPlaceholderIds() throws {
        for c in Fixtures.cases(try Fixtures.manifest["job"]?["invalid"]) {
            try Fixtures.data(c.file).write(to: docs.appendingPathComponent("job.json"))
            try? FileManager.default.removeItem(at: docs.appendingPathComponent("result.json"))
            let (code, doc) = try run(PlainRunner(.ok), name: "session_badjob_\(c.file.split(separator: "/").last!)")
            XCTAssertEqual(code, 1, c.file)
            XCTAssertEqual(doc["error"]?["category"], .string("bad_job"), c.file)
            XCTAssertEqual(doc["job_id"], .string("unknown"), c.file)
        }
    }

    func testWrongModelHashIsRefusedBeforeLoading() throws {
        try writeJob { $0["model_sha256"] = .string(String(repeating: "0", count: 64)) }
        let runner = PlainRunner(.ok)
        let (_, doc) = try run(runner, name: "session_hash_mismatch")
        XCTAssertEqual(doc["error"]?["category"], .string("other"))
        XCTAssertNil(runner.loadedComputeUnits)
    }

    func testExecuTorchErrorsKeepTheirCategory() throws {
        try writeJob()
        XCTAssertEqual(try run(PlainRunner(.throwOnLoad(20)), name: "session_operator_missing").1["error"]?["category"],
                       .string("unsupported_op"))
        try? FileManager.default.removeItem(at: docs.appendingPathComponent("result.json"))
        XCTAssertEqual(try run(PlainRunner(.throwOnForward(33)), name: "session_oom").1["error"]?["category"],
                       .string("out_of_memory"))
    }

    func testProfileRequestIsAnsweredUnsupportedAndTimingKept() throws {
        try writeJob { $0["profile"] = .object(["iterations": .int(3)]) }
        let (code, doc) = try run(PlainRunner(.ok), name: "session_profile_unsupported")
        XCTAssertEqual(code, 0)
        XCTAssertEqual(doc["status"], .string("ok"))
        XCTAssertEqual(doc["profile"]?["error"]?["category"], .string("unsupported"))
    }

    func testRuntimeBackendTheAppLacksIsUnsupported() throws {
        try writeJob { $0["runtime"] = .string("MetalBackend") }
        let (_, doc) = try run(PlainRunner(.ok), name: "session_no_backend")
        XCTAssertEqual(doc["error"]?["category"], .string("unsupported_op"))
    }

    func testHungForwardPassEndsInATimeoutResult() throws {
        try writeJob { $0["timeout_s"] = .double(0.3); $0["warmup"] = .int(0); $0["iterations"] = .int(1) }
        let fired = expectation(description: "watchdog")
        let (code, doc) = try run(PlainRunner(.hang(1.5)), name: "session_timeout") { _ in fired.fulfill() }
        wait(for: [fired], timeout: 5)
        XCTAssertEqual(code, 1)
        XCTAssertEqual(doc["error"]?["category"], .string("timeout"))
        XCTAssertEqual(doc["job_id"], .string("job-7f3a"))
    }

    func testSessionThreadGetsItsQualityOfServiceBeforeStarting() throws {
        try writeJob()
        let done = expectation(description: "finished")
        var exit: Int32 = -1
        BenchmarkSession(documents: docs, runner: PlainRunner(.ok), probe: FixedProbe(),
                         preprocessor: PortablePreprocessor(frameWidth: 64, frameHeight: 36)).start { code in
            exit = code
            done.fulfill()
        }
        wait(for: [done], timeout: 30)
        XCTAssertEqual(exit, 0)
    }
}
