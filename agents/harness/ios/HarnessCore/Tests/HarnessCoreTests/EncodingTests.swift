import Foundation
import XCTest
@testable import HarnessCore

final class EncodingTests: XCTestCase {
    func testNonFiniteNumbersNeverCrashTheWriter() throws {
        let v = JSONValue.array([.double(.nan), .double(.infinity), .double(-.infinity), .double(1.5)])
        XCTAssertEqual(String(decoding: JSONWriter.data(v), as: UTF8.self), "[null,null,null,1.5]")
    }

    func testNonFiniteOutputDropsTheHeadAndCountsThem() {
        let s = OutputSummary([1, .nan, 3, .infinity, -2], shape: [5])
        XCTAssertEqual(s.nonFinite, 2)
        XCTAssertEqual(s.firstNonFinite, 1)
        XCTAssertEqual(s.top1, 3)  // +inf is the largest value; NaN never wins
        XCTAssertNil(s.json["head"])
        XCTAssertNotNil(s.json["digest"])
    }

    func testStringsAreBoundedInCodePointsNotCharacters() {
        let flag = "🇫🇷"  // one Character, two code points
        XCTAssertEqual(bounded(String(repeating: flag, count: 3), 5).unicodeScalars.count, 5)
        var doc = ResultDocument()
        doc.fail(HarnessError(.runtimeError, String(repeating: "🔥", count: 4001)))
        doc.backend = String(repeating: "é", count: 100)
        let parsed = try? JSONParser.parse(doc.encoded())
        guard case .string(let m)? = parsed?["error"]?["message"], case .string(let b)? = parsed?["backend"] else {
            return XCTFail("no message")
        }
        XCTAssertEqual(m.unicodeScalars.count, 4000)
        XCTAssertEqual(b.unicodeScalars.count, 64)
    }

    func testEscapesAndControlCharactersRoundTrip() throws {
        let s = "quote\" backslash\\ nl\n tab\t nul\u{0} bell\u{7} 🛰 é"
        let data = JSONWriter.data(.object(["k": .string(s)]))
        XCTAssertEqual(try JSONParser.parse(data)["k"], .string(s))
        XCTAssertEqual(try JSONParser.parse(Data(#"{"k":"\ud83d\udef0"}"#.utf8))["k"], .string("🛰"))
    }

    func testNumbersRoundTripExactly() throws {
        for d in [0.1, 1e-5, 5e-324, 1.7976931348623157e308, -0.0625, 123456.789, 3.0, 1e20] {
            XCTAssertEqual(try JSONParser.parse(JSONWriter.data(.double(d))).numberValue, d)
        }
        XCTAssertEqual(try JSONParser.parse(Data("-9223372036854775808".utf8)), .int(Int64.min))
    }

    func testParserRefusesWhatIsNotJSON() {
        for bad in ["NaN", "[1,]", "{\"a\":1,\"a\":2}", "01", "\"\\ud800\"", "[" + String(repeating: "[", count: 100), "1 2",
                    "{\"a\":\"\u{1}\"}"] {
            XCTAssertThrowsError(try JSONParser.parse(Data(bad.utf8)), bad)
        }
        XCTAssertThrowsError(try JSONParser.parse(Data([0x22, 0xFF, 0x22])))  // invalid UTF-8
    }

    func testBooleansAreNotIntegers() {
        XCTAssertNil(JSONValue.bool(true).integerValue)
        XCTAssertEqual(JSONValue.double(3.0).integerValue, 3)
        XCTAssertNil(JSONValue.double(3.5).integerValue)
    }
}
