import Foundation
import FunnelBase
import FunnelEvents
import Testing

/// Random valid events, random junk and mutations of valid lines.
struct LineFuzzer {
    var rng: SplitMix64
    init(state: UInt64) { rng = SplitMix64(seed: state) }
    mutating func next() -> UInt64 { rng.next() }
    mutating func int(_ n: Int) -> Int { Int(next() % UInt64(n)) }

    mutating func validLine() -> String {
        let id = "e\(int(300))"
        let user = "u\(int(20))"
        let ts = int(2) == 0 ? "\(1_772_323_200_000 + int(100_000_000))" : "\"2026-03-0\(1 + int(9))T1\(int(10)):0\(int(10)):00.\(int(1000))Z\""
        switch int(5) {
        case 0: return #"{"type":"exposure","event_id":"\#(id)","ts":\#(ts),"user_id":"\#(user)","experiment":"x","variant":"v\#(int(2))","context":{"device":"d\#(int(3))"}}"#
        case 1: return #"{"type":"impression","event_id":"\#(id)","ts":\#(ts),"user_id":"\#(user)","item_id":"i\#(int(9))","position":\#(1 + int(5)),"viewable_fraction":0.\#(int(10)),"viewable_ms":\#(int(3000))}"#
        case 2: return #"{"type":"click","event_id":"\#(id)","ts":\#(ts),"user_id":"\#(user)","impression_id":"e\#(int(300))"}"#
        case 3: return #"{"type":"add_to_cart","event_id":"\#(id)","ts":\#(ts),"user_id":"\#(user)","item_id":"i\#(int(9))","quantity":\#(1 + int(3))}"#
        default: return #"{"type":"purchase","event_id":"\#(id)","ts":\#(ts),"user_id":"\#(user)","order_id":"o\#(int(50))","items":[{"item_id":"i\#(int(9))","price":\#(int(100)).5,"quantity":\#(1 + int(2))}]}"#
        }
    }

    mutating func mutate(_ line: String) -> [UInt8] {
        var bytes = Array(line.utf8)
        for _ in 0..<(1 + int(3)) {
            guard !bytes.isEmpty else { break }
            let at = int(bytes.count)
            switch int(6) {
            case 0: bytes.remove(at: at)
            case 1: bytes.insert(UInt8(truncatingIfNeeded: next()), at: at)
            case 2:
                let alphabet = Array("{}[]\":,0-.eE\\ntfu".utf8)
                bytes[at] = alphabet[int(alphabet.count)]
            case 3: bytes = Array(bytes[0..<at])
            case 4: bytes.insert(contentsOf: Array("null".utf8), at: at)
            default: bytes[at] = UInt8(truncatingIfNeeded: next())
            }
        }
        return bytes.filter { $0 != 0x0A }
    }
}

/// Threads, processes or long loops: a hang fails the test instead of stalling the run.
@Suite(.timeLimit(.minutes(5)))
struct FuzzTests {
    @Test func everyLineIsCountedOrQuarantinedAndNothingCrashes() throws {
        var fuzz = LineFuzzer(state: 42)
        var text: [UInt8] = []
        var nonBlank = 0
        for k in 0..<6000 {
            let line: [UInt8]
            switch k % 3 {
            case 0: line = Array(fuzz.validLine().utf8)
            case 1: line = fuzz.mutate(fuzz.validLine())
            default: line = (0..<fuzz.int(80)).map { _ in UInt8(truncatingIfNeeded: fuzz.next()) }.filter { $0 != 0x0A }
            }
            if line.contains(where: { $0 != 0x20 && $0 != 0x09 && $0 != 0x0D }) { nonBlank += 1 }
            text += line + [0x0A]
        }
        let dir = try tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/fuzz.jsonl"
        #expect(FileManager.default.createFile(atPath: path, contents: Data(text)))
        let log = try EventReader.read(paths: [path])
        #expect(log.counters.eventsRead == nonBlank)
        #expect(log.counters.eventsRead == log.events.count + log.counters.quarantinedTotal + log.counters.duplicateEvents)
        #expect(log.events.count > 100)
        #expect(log.counters.quarantinedTotal > 1000)
    }

    /// Differential test against Foundation's JSONSerialization: a line is `invalid_json` exactly
    /// when JSONSerialization cannot read it as an object (over valid and mutated lines), and the
    /// strings we extract equal the ones it decodes.
    @Test func agreesWithJSONSerialization() throws {
        var fuzz = LineFuzzer(state: 7)
        var disagreements: [String] = []
        for k in 0..<4000 {
            let bytes = k % 2 == 0 ? Array(fuzz.validLine().utf8) : fuzz.mutate(fuzz.validLine())
            let reference = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
            var parser = EventLineParser()
            let ours = bytes.withUnsafeBufferPointer { parser.parse($0) }
            let oursIsJSONObject: Bool
            switch ours {
            case .success: oursIsJSONObject = true
            case .failure(let r): oursIsJSONObject = r.reason != .invalidJSON
            }
            let referenceIsObject = reference is [String: Any]
            // JSONSerialization rejects numbers beyond the double range (1e400); RFC 8259 allows them
            // and Funnel reads them as ±infinity (then quarantined by the field's range check).
            let hugeExponent = String(decoding: bytes, as: UTF8.self).range(of: #"[0-9][eE][+-]?[0-9]{3,}"#, options: .regularExpression) != nil
            if oursIsJSONObject != referenceIsObject && !(hugeExponent && oursIsJSONObject) {
                disagreements.append(String(decoding: bytes, as: UTF8.self))
                continue
            }
            if case .success(let e) = ours, let object = reference as? [String: Any] {
                if parser.arena.string(e.eventID) != object["event_id"] as? String
                    || parser.arena.string(e.user) != object["user_id"] as? String {
                    disagreements.append(String(decoding: bytes, as: UTF8.self))
                }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.prefix(5))")
    }
}
