// The golden input, bit-for-bit the same as agents.harness.contract.golden_input:
//   x[i] = ((i * 2654435761 + seed) mod 2^32) / 2^32, as float32.
// Computed in UInt64 with wrapping arithmetic: numpy wraps at 2^64 too, and 2^64 is a multiple
// of 2^32, so the low 32 bits agree. The division is done in Double, then rounded to Float,
// exactly like numpy's float64 -> float32 cast.
import CryptoKit
import Foundation

enum Golden {
    static let multiplier: UInt64 = 2654435761

    static func input(count: Int, seed: UInt64) -> [Float] {
        (0..<count).map { i in
            let v = (UInt64(i) &* multiplier &+ seed) & 0xFFFF_FFFF
            return Float(Double(v) / 4294967296.0)
        }
    }

    /// The output block of the result: digest of the float32 bytes, shape, top-1 and the first values.
    static func summarize(_ values: [Float], shape: [Int], head: Int = 16) -> [String: Any] {
        let digest = values.withUnsafeBytes { SHA256.hash(data: Data($0)) }
        var top1 = 0
        for (i, v) in values.enumerated() where v > values[top1] { top1 = i }
        return [
            "digest": digest.map { String(format: "%02x", $0) }.joined(),
            "shape": shape,
            "top1": values.isEmpty ? 0 : top1,
            "head": values.prefix(head).map { Double($0) },
        ]
    }
}
