import FunnelBase
import FunnelEvents
import Testing

func check(_ line: String) -> Result<ParsedEvent, Rejection> {
    var parser = EventLineParser()
    var copy = line
    return copy.withUTF8 { parser.parse($0) }
}

func reason(_ line: String) -> (QuarantineReason?, String?) {
    switch check(line) {
    case .success: return (nil, nil)
    case .failure(let r): return (r.reason, r.field)
    }
}

let imp = #""type":"impression","event_id":"i1","ts":"2026-03-01T12:00:00Z","user_id":"u1","item_id":"a","position":1"#

struct ValidationTests {
    @Test("each quarantine reason names its field", arguments: [
        ("not json", QuarantineReason.invalidJSON, nil as String?),
        ("[1,2]", .invalidJSON, nil),
        (#"{"type":"click","ts":NaN}"#, .invalidJSON, nil),
        (#"{"type":"click","x":Infinity}"#, .invalidJSON, nil),
        (#"{"type":"click","x":-Infinity}"#, .invalidJSON, nil),
        (#"{"type":"click","event_id":"e1""#, .invalidJSON, nil),
        (#"{"type":"click",}"#, .invalidJSON, nil),
        (#"{"type":"click"} x"#, .invalidJSON, nil),
        (#"{"a":01}"#, .invalidJSON, nil),
        (#"{"event_id":"e"}"#, .missingField, "type"),
        (#"{"type":null}"#, .missingField, "type"),
        (#"{"type":5}"#, .wrongType, "type"),
        (#"{"type":"view"}"#, .unknownType, "type"),
        ("{\(imp.replacingOccurrences(of: #","item_id":"a""#, with: ""))}", .missingField, "item_id"),
        ("{\(imp.replacingOccurrences(of: #""position":1"#, with: #""position":null"#))}", .missingField, "position"),
        ("{\(imp.replacingOccurrences(of: #""position":1"#, with: #""position":"1""#))}", .wrongType, "position"),
        ("{\(imp.replacingOccurrences(of: #""position":1"#, with: #""position":1.5"#))}", .wrongType, "position"),
        ("{\(imp.replacingOccurrences(of: #""position":1"#, with: #""position":true"#))}", .wrongType, "position"),
        ("{\(imp),\"bot\":1}", .wrongType, "bot"),
        ("{\(imp),\"context\":{\"device\":3}}", .wrongType, "context.device"),
        ("{\(imp),\"context\":[]}", .wrongType, "context"),
        ("{\(imp.replacingOccurrences(of: "2026-03-01T12:00:00Z", with: "2026-03-01"))}", .invalidTimestamp, "ts"),
        ("{\(imp.replacingOccurrences(of: #""2026-03-01T12:00:00Z""#, with: "1772366400000.5"))}", .invalidTimestamp, "ts"),
        ("{\(imp.replacingOccurrences(of: #""2026-03-01T12:00:00Z""#, with: "true"))}", .wrongType, "ts"),
        ("{\(imp.replacingOccurrences(of: #""position":1"#, with: #""position":0"#))}", .invalidValue, "position"),
        ("{\(imp.replacingOccurrences(of: #""position":1"#, with: #""position":1e400"#))}", .invalidValue, "position"),
        ("{\(imp),\"propensity\":0}", .invalidValue, "propensity"),
        ("{\(imp),\"viewable_fraction\":1.5}", .invalidValue, "viewable_fraction"),
        ("{\(imp),\"price\":-1}", .invalidValue, "price"),
        ("{\(imp.replacingOccurrences(of: #""user_id":"u1""#, with: #""user_id":"""#))}", .invalidValue, "user_id"),
        (#"{"type":"purchase","event_id":"p","ts":1,"user_id":"u","order_id":"o","items":[]}"#, .invalidValue, "items"),
        (#"{"type":"purchase","event_id":"p","ts":1,"user_id":"u","order_id":"o","items":[{"item_id":"a"}]}"#, .missingField, "items[0].price"),
        (#"{"type":"purchase","event_id":"p","ts":1,"user_id":"u","order_id":"o","items":[3]}"#, .wrongType, "items[0]"),
        (#"{"type":"purchase","event_id":"p","ts":1,"user_id":"u","order_id":"o","items":[{"item_id":"a","price":1,"quantity":0}]}"#, .invalidValue, "items[0].quantity"),
        (#"{"type":"add_to_cart","event_id":"c","ts":1,"user_id":"u","item_id":"a","quantity":2.5}"#, .wrongType, "quantity"),
    ])
    func quarantineReasons(_ line: String, _ expected: QuarantineReason, _ field: String?) {
        let (r, f) = reason(line)
        #expect(r == expected, "\(line)")
        #expect(f == field, "\(line)")
    }

    @Test func checksRunInContractOrder() {
        // A missing required field wins over a wrong type elsewhere; a wrong type over a bad timestamp.
        #expect(reason(#"{"type":"impression","event_id":"e","ts":"bad","user_id":"u","position":"x"}"#).0 == .missingField)
        #expect(reason(#"{"type":"impression","event_id":"e","ts":"bad","user_id":"u","item_id":"a","position":"x"}"#).0 == .wrongType)
        #expect(reason(#"{"type":"impression","event_id":"e","ts":"bad","user_id":"u","item_id":"a","position":0}"#).0 == .invalidTimestamp)
    }

    @Test func acceptsIntegralFloatsNullsAndUnknownFields() throws {
        let line = "{\(imp.replacingOccurrences(of: #""position":1"#, with: #""position":3.0"#)),\"surface\":null,\"extra\":{\"deep\":[1,{\"x\":null}]},\"quantity\":\"ignored on impressions\"}"
        let e = try check(line).get()
        #expect(e.position == 3)
        #expect(e.surface.isNone)
    }

    @Test func escapedStringsAreDecoded() throws {
        var parser = EventLineParser()
        var line = #"{"type":"click","event_id":"c\u0031","ts":0,"user_id":"\u00fc\ud83d\ude00","impression_id":"a\"b"}"#
        let e = try line.withUTF8 { parser.parse($0) }.get()
        #expect(parser.arena.string(e.eventID) == "c1")
        #expect(parser.arena.string(e.user) == "ü😀")
        #expect(parser.arena.string(e.impressionID) == "a\"b")
    }

    @Test func invalidUTF8AndHugeLinesAreQuarantined() {
        var parser = EventLineParser()
        let bad: [UInt8] = Array(#"{"type":"click","event_id":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)
        let r1 = bad.withUnsafeBufferPointer { parser.parse($0) }
        #expect((try? r1.get()) == nil)
        let huge = Array(("{\"type\":\"click\",\"pad\":\"" + String(repeating: "x", count: 10 << 20) + "\"}").utf8)
        if case .failure(let r) = huge.withUnsafeBufferPointer({ parser.parse($0) }) {
            #expect(r.reason == .invalidJSON)
        } else {
            Issue.record("a 10 MB line must be quarantined")
        }
        let deep = Array(("{\"type\":\"click\",\"x\":" + String(repeating: "[", count: 100_000) + "}").utf8)
        if case .failure(let r) = deep.withUnsafeBufferPointer({ parser.parse($0) }) {
            #expect(r.reason == .invalidJSON)
        } else {
            Issue.record("deep nesting must be quarantined")
        }
    }

    @Test func lastRepeatedKeyWins() throws {
        var parser = EventLineParser()
        var line = #"{"type":"click","event_id":"a","event_id":"b","ts":0,"user_id":"u","impression_id":"i"}"#
        let e = try line.withUTF8 { parser.parse($0) }.get()
        #expect(parser.arena.string(e.eventID) == "b")
    }
}
