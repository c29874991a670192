/// A map from 64-bit feature keys to 32-bit values in one open-addressing table (linear probing,
/// kept at most half full): the reader counts every categorical and numeric token of a training
/// file in it, and finds each cell's vocabulary slot in it, where Swift's `Dictionary` (hashing
/// each key with a per-process seed) and a binary search of the sorted vocabulary took most of the
/// time of reading a file. Feature keys are already FNV-1a hashes, so one multiply spreads them.
final class KeyTable: @unchecked Sendable {
    private var keys: UnsafeMutablePointer<UInt64>
    /// `empty` marks a free entry.
    private var values: UnsafeMutablePointer<UInt32>
    private var mask: Int
    private var shift: UInt64
    private(set) var count = 0
    static let empty = UInt32.max

    /// A table with room for `capacity` keys before it grows.
    init(capacity: Int = 1024) {
        var size = 16
        while size < 2 * capacity { size <<= 1 }
        (keys, values, mask, shift) = Self.storage(size)
    }

    /// Free entries for `size` (a power of two) keys, with the mask and shift that index them.
    private static func storage(_ size: Int) -> (UnsafeMutablePointer<UInt64>, UnsafeMutablePointer<UInt32>, Int, UInt64) {
        let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: size), values = UnsafeMutablePointer<UInt32>.allocate(capacity: size)
        keys.initialize(repeating: 0, count: size)
        values.initialize(repeating: empty, count: size)
        return (keys, values, size - 1, UInt64(64 - size.trailingZeroBitCount))
    }

    /// The slot of each key of a sorted vocabulary: its position.
    convenience init(positionsOf vocabulary: [UInt64]) {
        self.init(capacity: vocabulary.count)
        for (i, k) in vocabulary.enumerated() { set(k, UInt32(i)) }
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    @inline(__always)
    private func home(_ k: UInt64) -> Int { Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> shift) }

    /// The value stored for `k`, or nil.
    @inline(__always)
    func value(_ k: UInt64) -> UInt32? {
        var i = home(k)
        while true {
            let v = values[i]
            if v == Self.empty { return nil }
            if keys[i] == k { return v }
            i = (i + 1) & mask
        }
    }

    /// Adds `n` to the count of `k` (counts saturate below `empty`).
    @inline(__always)
    func increment(_ k: UInt64, by n: UInt32 = 1) {
        var i = home(k)
        while true {
            let v = values[i]
            if v == Self.empty { break }
            if keys[i] == k {
                values[i] = UInt32(min(UInt64(v) + UInt64(n), UInt64(Self.empty - 1)))
                return
            }
            i = (i + 1) & mask
        }
        keys[i] = k
        values[i] = min(n, Self.empty - 1)
        count += 1
        if 2 * count > mask + 1 { grow() }
    }

    /// Adds every count of `other` to this table's.
    func add(_ other: KeyTable) {
        for i in 0...other.mask where other.values[i] != Self.empty { increment(other.keys[i], by: other.values[i]) }
    }

    /// Stores `value` (below `empty`) for `k`.
    func set(_ k: UInt64, _ value: UInt32) {
        var i = home(k)
        while values[i] != Self.empty && keys[i] != k { i = (i + 1) & mask }
        if values[i] == Self.empty {
            keys[i] = k
            count += 1
        }
        values[i] = value
        if 2 * count > mask + 1 { grow() }
    }

    /// Every key whose value is at least `minimum`.
    func keys(withValueAtLeast minimum: UInt32) -> [UInt64] {
        var out: [UInt64] = []
        for i in 0...mask where values[i] != Self.empty && values[i] >= minimum { out.append(keys[i]) }
        return out
    }

    private func grow() {
        let oldKeys = keys, oldValues = values, oldSize = mask + 1
        (keys, values, mask, shift) = Self.storage(2 * oldSize)
        for i in 0..<oldSize where oldValues[i] != Self.empty {
            var j = home(oldKeys[i])
            while values[j] != Self.empty { j = (j + 1) & mask }
            keys[j] = oldKeys[i]
            values[j] = oldValues[i]
        }
        oldKeys.deallocate()
        oldValues.deallocate()
    }
}
