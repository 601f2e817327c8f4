import XCTest
@testable import HarnessCore

final class FramePipelineTests: XCTestCase {
    func testPercentilesAreNumpysLinearInterpolation() throws {
        // numpy.percentile([4.125, 4.0, 3.9375, 4.0625, 5.5], [10, 50, 90]) == [3.9625, 4.0625, 4.95]
        let xs = [4.125, 4.0, 3.9375, 4.0625, 5.5]
        XCTAssertEqual(try XCTUnwrap(FramePipeline.percentile(xs, 10)), 3.9625, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(FramePipeline.percentile(xs, 50)), 4.0625, accuracy: 1e-12)
        XCTAssertEqual(try XCTUnwrap(FramePipeline.percentile(xs, 90)), 4.95, accuracy: 1e-12)
        XCTAssertEqual(FramePipeline.percentile([7], 90), 7)
        XCTAssertNil(FramePipeline.percentile([], 50))
        XCTAssertEqual(FramePipeline.times(xs)?["mean"]?.numberValue ?? 0, 4.325, accuracy: 1e-12)
    }

    func testBlockSumsTheStagesPerIterationAndNeedsThemAligned() throws {
        let frame = FrameSize(width: 1920, height: 1080)
        let block = try XCTUnwrap(FramePipeline.block(pre: [1, 2], inference: [10, 20], post: [0.5, 0.5],
                                                      frame: frame, preprocess: "test"))
        XCTAssertEqual(block["total_ms"]?["p50"]?.numberValue, 17.0)  // median of 11.5 and 22.5
        XCTAssertEqual(block["iterations"], .int(2))
        XCTAssertEqual(block["frame"]?["format"], .string("BGRA8"))
        XCTAssertEqual(block["source"], .string("measured"))
        XCTAssertNil(FramePipeline.block(pre: [1], inference: [10, 20], post: [0.5, 0.5], frame: frame, preprocess: "x"))
        XCTAssertNil(FramePipeline.block(pre: [], inference: [], post: [], frame: frame, preprocess: "x"))
    }
}
