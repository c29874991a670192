import Foundation
import FunnelBase
@testable import FunnelModels
import Testing

/// The reader's key table against Swift's Dictionary, and a file's vocabulary slots against a
/// binary search of the sorted vocabulary.
struct KeyTableTests {
    @Test func countsAndFindsAsADictionaryDoes() {
        var rng = SplitMix64(seed: 21)
        let table = KeyTable(capacity: 4)                 // grows many times
        var reference: [UInt64: UInt32] = [:]
        // Keys drawn from a small range repeat often; half of them differ only in their high bits
        // (the low 40 are zero), and a few sit at 0 and at UInt64.max.
        for _ in 0..<200_000 {
            let n = rng.next() % 30_000
            let k: UInt64 = rng.next() % 50 == 0 ? [0, UInt64.max][Int(rng.next() % 2)] : rng.next() % 2 == 0 ? n << 40 : n &* 0x1_0000_0001
            table.increment(k)
            reference[k, default: 0] += 1
        }
        #expect(table.count == reference.count)
        var wrong = 0
        for (k, n) in reference where table.value(k) != n { wrong += 1 }
        // Absent keys: the same low bits as present ones, other high bits.
        for m in UInt64(30_000)..<40_000 where table.value(m << 40) != nil || table.value(m &* 0x1_0000_0001 | 1 << 63) != nil { wrong += 1 }
        #expect(wrong == 0)
        #expect(Set(table.keys(withValueAtLeast: 10)) == Set(reference.filter { $0.value >= 10 }.keys))
        let sorted = reference.keys.sorted()
        let positions = KeyTable(positionsOf: sorted)
        #expect(sorted.enumerated().allSatisfy { positions.value($0.element) == UInt32($0.offset) })
    }

    /// 20,000 rows (laid out on two threads), categorical columns with rare values, and a numeric
    /// column with empty cells: the vocabulary is every key seen at least 3 times, and every cell
    /// gets the slot a binary search of it gives.
    @Test func vocabularySlotsOfALargeFile() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("funnel-keytable-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        var rng = SplitMix64(seed: 8)
        var text = "click,item,shop,price\n"
        var cells: [(item: String, shop: String, price: String)] = []
        for _ in 0..<20_000 {
            let item = "i\(Int(pow(rng.unit(), 3) * 4_000))", shop = "s\(rng.next() % 40)"
            let price = rng.next() % 7 == 0 ? "" : String(Double(rng.next() % 10_000) / 100 - 20)
            cells.append((item, shop, price))
            text += "\(rng.next() % 2),\(item),\(shop),\(price)\n"
        }
        let path = dir.appendingPathComponent("t.csv").path
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        var spec = FeatureSpec(label: "click", categorical: ["item", "shop"], numeric: ["price"])
        spec.vocabularyMinCount = 3
        let (t, fitted) = try TableReader.read(path: path, format: "csv", spec: spec, fit: true)
        func key(_ field: Int, _ s: String) -> UInt64 { Array(s.utf8).withUnsafeBufferPointer { fitted.key(field: field, $0) } }
        // The reference: a binary search of the sorted vocabulary; the column's "other" slot when absent.
        func vocabularySlot(_ k: UInt64, field: Int) -> UInt32 {
            let v = fitted.vocabulary
            var lo = 0, hi = v.count
            while lo < hi {
                let mid = (lo + hi) >> 1
                if v[mid] < k { lo = mid + 1 } else { hi = mid }
            }
            return lo < v.count && v[lo] == k ? UInt32(lo) : UInt32(v.count + field)
        }
        var counts: [UInt64: Int] = [:]
        for c in cells {
            counts[key(0, c.item), default: 0] += 1
            counts[key(1, c.shop), default: 0] += 1
            counts[key(2, c.price.isEmpty ? "missing" : ""), default: 0] += 1
        }
        #expect(fitted.vocabulary == counts.filter { $0.value >= 3 }.keys.sorted())
        #expect(fitted.vocabulary.count < counts.count)      // some items are rarer than 3
        var wrong = 0
        for (r, c) in cells.enumerated() {
            let expected = [vocabularySlot(key(0, c.item), field: 0), vocabularySlot(key(1, c.shop), field: 1),
                            vocabularySlot(key(2, c.price.isEmpty ? "missing" : ""), field: 2)]
            if Array(t.indices[(r * 3)..<(r * 3 + 3)]) != expected { wrong += 1 }
            let x = Double(c.price) ?? 0
            let value: Float = c.price.isEmpty ? 1 : Float((x < 0 ? -1 : 1) * log1p(abs(x)))
            if t.values[r * 3 + 2] != value || t.values[r * 3] != 1 { wrong += 1 }
        }
        #expect(wrong == 0)
    }
}
