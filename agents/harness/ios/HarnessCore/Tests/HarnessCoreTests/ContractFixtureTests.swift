import Foundation
import XCTest
@testable import HarnessCore

final class ContractFixtureTests: XCTestCase {
    func testValidJobsDecode() throws {
        let files = Fixtures.strings(try Fixtures.manifest["job"]?["valid"])
        XCTAssertGreaterThanOrEqual(files.count, 3)
        for f in files {
            let job = try Job.decode(Fixtures.data(f))
            XCTAssertFalse(job.jobId.isEmpty, f)
            XCTAssertGreaterThan(job.inputElementCount, 0, f)
        }
    }

    func testCodePointIdsAreAcceptedAtTheirLimit() throws {
        let job = try Job.decode(Fixtures.data("job/valid/code_point_ids.json"))
        XCTAssertEqual(job.jobId.unicodeScalars.count, 64)
        XCTAssertEqual(job.attemptId.unicodeScalars.count, 64)  // 256 UTF-8 bytes, 64 code points
        XCTAssertEqual(job.goldenSeed, UInt64(Int64.max))
    }

    func testHostileJobsAreBadJobAtTheSameFieldAsPython() throws {
        let cases = Fixtures.cases(try Fixtures.manifest["job"]?["invalid"])
        XCTAssertGreaterThanOrEqual(cases.count, 20)
        for c in cases {
            XCTAssertThrowsError(try Job.decode(Fixtures.data(c.file)), c.file) { error in
                guard let e = error as? HarnessError else { return XCTFail("\(c.file): \(error)") }
                XCTAssertEqual(e.category, .badJob, c.file)
                XCTAssertTrue(e.message.contains("at \(c.field):"), "\(c.file): \(e.message)")
            }
        }
    }

    func testValidResultsRoundTripThroughDecoderAndEncoder() throws {
        let files = Fixtures.strings(try Fixtures.manifest["result"]?["valid"])
        XCTAssertGreaterThanOrEqual(files.count, 5)
        for f in files {
            let original = try Fixtures.json(f)
            let doc = try ResultDocument.decode(original)
            XCTAssertTrue(sameJSON(doc.json, original), "\(f) changed in the round trip")
            // and the bytes the encoder writes parse back to the same document
            XCTAssertEqual(try JSONParser.parse(doc.encoded()), doc.json, f)
        }
    }

    func testGoldenInputAndSummaryAreBitForBitPython() throws {
        for f in Fixtures.strings(try Fixtures.manifest["golden"]) {
            let doc = try Fixtures.json(f)
            guard case .array(let shapeJ)? = doc["shape"], let seed = doc["seed"]?.integerValue,
                  case .array(let inputJ)? = doc["input"], let summary = doc["summary"] else { return XCTFail(f) }
            let shape = shapeJ.compactMap { $0.integerValue }.map { Int($0) }
            let values = Golden.input(count: inputJ.count, seed: UInt64(seed))
            XCTAssertEqual(values.map { Double($0) }, inputJ.compactMap { $0.numberValue }, f)
            let s = OutputSummary(values, shape: shape)
            XCTAssertEqual(.string(s.digest), summary["digest"], f)
            XCTAssertEqual(s.top1, summary["top1"]?.integerValue.map { Int($0) }, f)
            XCTAssertTrue(sameJSON(s.json, summary), f)
        }
    }
}
