import Foundation
import XCTest
@testable import HarnessCore

final class ArithmeticTests: XCTestCase {
    func testExecuTorchErrorCodesMapToCategories() {
        XCTAssertEqual(ExecuTorchErrorCode.category(code: 20, at: .load), .unsupportedOp)  // OperatorMissing
        XCTAssertEqual(ExecuTorchErrorCode.category(code: 20, at: .execute), .unsupportedOp)
        XCTAssertEqual(ExecuTorchErrorCode.category(code: 33, at: .load), .outOfMemory)  // MemoryAllocationFailed
        XCTAssertEqual(ExecuTorchErrorCode.category(code: 49, at: .execute), .outOfMemory)  // DelegateMemoryAllocationFailed
        XCTAssertEqual(ExecuTorchErrorCode.category(code: 37, at: .execute), .outOfMemory)  // OutOfResources
        XCTAssertEqual(ExecuTorchErrorCode.category(code: 48, at: .load), .unsupportedOp)  // DelegateInvalidCompatibility
        XCTAssertEqual(ExecuTorchErrorCode.category(code: 35, at: .load), .modelLoadFailed)  // InvalidProgram
        XCTAssertEqual(ExecuTorchErrorCode.category(code: 18, at: .execute), .runtimeError)  // InvalidArgument
        XCTAssertEqual(ExecuTorchErrorCode.category(code: 999, at: .load), .modelLoadFailed)
        for c in ExecuTorchErrorCode.allCases {
            XCTAssertNotEqual(c.category(at: .load), .badJob)
            XCTAssertNotEqual(c.category(at: .execute), .harnessCrash)
        }
    }

    func testShapeProductsNeverTrap() {
        XCTAssertEqual(try Shape.elementCount([1, 3, 224, 224], limit: Int.max), 150_528)
        XCTAssertEqual(try Shape.elementCount([Int](), limit: 10), 1)
        XCTAssertEqual(try Shape.elementCount([4, 0, 9], limit: 10), 0)
        XCTAssertThrowsError(try Shape.elementCount(Array(repeating: 65536, count: 8), limit: Int.max))
        XCTAssertThrowsError(try Shape.elementCount([Int64.max, 2], limit: Int.max))
        XCTAssertThrowsError(try Shape.elementCount([2, -3], limit: 100))
        XCTAssertThrowsError(try Shape.elementCount([1000, 1000], limit: 999_999)) { e in
            XCTAssertEqual((e as? HarnessError)?.category, .outOfMemory)
        }
    }

    func testTicksOutOfOrderAreZeroAndLargeTicksDoNotOverflow() {
        let t = Timebase(numer: 125, denom: 3)  // the A-series timebase: 24 MHz ticks
        XCTAssertEqual(t.ms(from: 10, to: 5), 0)
        XCTAssertEqual(t.ms(from: 0, to: 24_000), 1.0, accuracy: 1e-9)
        XCTAssertGreaterThan(t.ms(from: 0, to: UInt64.max), 0)
        XCTAssertEqual(Timebase(numer: 1, denom: 0).ms(from: 0, to: 1_000_000), 1.0)
        XCTAssertEqual(Stats.median([3, 1, 2, 10]), 2.5)
        XCTAssertNil(Stats.median([]))
    }

    func testSha256MatchesKnownVectorsAcrossBlockBoundaries() {
        XCTAssertEqual(SHA256Digest.hex(Data()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(SHA256Digest.hex(Data("abc".utf8)), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let million = Data(repeating: UInt8(ascii: "a"), count: 1_000_000)
        XCTAssertEqual(SHA256Digest.hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        var chunked = SHA256Digest()
        for i in stride(from: 0, to: million.count, by: 777) { chunked.update(million[i..<min(i + 777, million.count)]) }
        XCTAssertEqual(chunked.finalize(), SHA256Digest.hex(million))
    }

    func testSoftmaxAndTopK() {
        let p = Postprocess.softmax([1, 2, 3, .nan, 1000])
        XCTAssertTrue(p[3].isNaN)
        XCTAssertEqual(p.filter { !$0.isNaN }.reduce(0, +), 1, accuracy: 1e-5)
        XCTAssertEqual(Postprocess.argmax(p), 4)
        let top = Postprocess.topK([0.1, 0.7, .nan, 0.2, 0.7], k: 3)
        XCTAssertEqual(top.map(\.index), [1, 4, 3])
        XCTAssertEqual(Postprocess.topK([1, 2], k: 5).count, 2)
        XCTAssertTrue(Postprocess.topK([1], k: 0).isEmpty)
        XCTAssertNil(Postprocess.argmax([.nan, .nan]))
    }

    func testBgraNormalisationIntoPlanarRGB() {
        // 2x1 image, rows padded to 12 bytes; pixel 0 is pure red, pixel 1 is white
        let bgra: [UInt8] = [0, 0, 255, 255, 255, 255, 255, 255, 9, 9, 9, 9]
        var out = [Float](repeating: -99, count: 6)
        let ok = bgra.withUnsafeBytes { src in
            out.withUnsafeMutableBufferPointer {
                Preprocess.bgraToPlanarRGB(src, width: 2, height: 1, bytesPerRow: 12, norm: .imagenet, into: $0)
            }
        }
        XCTAssertTrue(ok)
        XCTAssertEqual(out[0], (1 - 0.485) / 0.229, accuracy: 1e-5)  // R of the red pixel
        XCTAssertEqual(out[2], (0 - 0.456) / 0.224, accuracy: 1e-5)  // G of the red pixel
        XCTAssertEqual(out[5], (1 - 0.406) / 0.225, accuracy: 1e-5)  // B of the white pixel
        var small = [Float](repeating: 0, count: 5)
        let refused = bgra.withUnsafeBytes { src in
            small.withUnsafeMutableBufferPointer {
                Preprocess.bgraToPlanarRGB(src, width: 2, height: 1, bytesPerRow: 12, norm: .imagenet, into: $0)
            }
        }
        XCTAssertFalse(refused)
    }
}
