import Foundation
import FunnelBase
import Testing

/// The scanner's fast paths against the C library and against the byte-by-byte rules.
struct JSONScannerTests {
    func number(_ text: String) throws -> Double {
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { b in
            var s = JSONScanner(b)
            return try s.scanNumber()
        }
    }

    /// Decimals with up to 15 significant digits take the fast path (digits ÷ 10^k); every one must
    /// equal strtod's correctly rounded value, bit for bit, as must longer ones and exponents.
    @Test func decimalsEqualStrtod() throws {
        var g = SplitMix64(seed: 42)
        var texts = ["0.96", "23.77", "-0.0", "0.1", "0.3", "9007199254740.993", "123456789012345.6", "1.5e3", "2E-5",
                     "0.000000000000001", "999999999999999.9", "0.30000000000000004", "1234567890.12345678"]
        for _ in 0..<20000 {
            let intDigits = Int(g.next() % 9), fracDigits = 1 + Int(g.next() % 14)
            var t = g.next() % 2 == 0 ? "-" : ""
            t += intDigits == 0 ? "0" : String(1 + g.next() % 9) + (0..<intDigits - 1).map { _ in String(g.next() % 10) }.joined()
            t += "." + (0..<fracDigits).map { _ in String(g.next() % 10) }.joined()
            texts.append(t)
        }
        for t in texts {
            let got = try number(t)
            let expected = strtod(t, nil)
            #expect(got.bitPattern == expected.bitPattern, "\(t): \(got) against strtod's \(expected)")
        }
    }

    /// Strings are scanned eight bytes at a time until a quote, a backslash or a control byte; the
    /// result must match wherever that byte falls, and multi-byte UTF-8 passes untouched.
    @Test func stringsEndWhereverTheQuoteFalls() throws {
        for length in 0..<40 {
            for special in ["", "\\n", "\\\"", "é", "\\u00e9"] {
                let body = String(repeating: "a", count: length) + special + "xyz"
                let text = "\"" + body + "\",1"
                let bytes = Array(text.utf8)
                let (start, end, escaped) = try bytes.withUnsafeBufferPointer { b in
                    var s = JSONScanner(b)
                    return try s.scanString()
                }
                #expect(start == 1 && end == 1 + body.utf8.count, "\(text)")
                #expect(escaped == special.hasPrefix("\\"))
            }
            let control = Array(("\"" + String(repeating: "a", count: length) + "\u{01}\"").utf8)
            #expect(throws: JSONSyntaxError.self) {
                _ = try control.withUnsafeBufferPointer { b in
                    var s = JSONScanner(b)
                    return try s.scanString()
                }
            }
        }
    }
}
