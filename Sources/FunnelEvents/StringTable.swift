import Foundation
import FunnelBase

/// An interning table: each distinct byte string gets a dense `Int32` id, in order of first sight.
///
/// Strings live in one contiguous byte arena; lookups are open addressing over stored hashes,
/// so interning ten million ids costs a few hundred megabytes rather than ten million `String`s.
public struct StringTable: Sendable {
    var arena: [UInt8] = []
    var starts: [Int] = [0]
    var hashes: [UInt64] = []
    var slots: [Int32]
    var mask: Int

    public init(capacity: Int = 1024) {
        var size = 16
        while size * 3 < capacity * 4 { size <<= 1 }
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
    }

    /// Reserves room for `strings` strings of `bytes` bytes in all, hash slots included (so that
    /// interning that many never rehashes).
    public mutating func reserve(strings: Int, bytes: Int) {
        arena.reserveCapacity(bytes)
        starts.reserveCapacity(strings + 1)
        hashes.reserveCapacity(strings)
        var size = slots.count
        while size * 3 < strings * 4 { size <<= 1 }
        if size > slots.count {
            slots = [Int32](repeating: -1, count: size / 2)
            grow()
        }
    }

    /// Number of distinct strings.
    public var count: Int { hashes.count }

    /// The id of `bytes` (hash `hash`, from `hashBytes`), adding it if new.
    @inline(__always)
    public mutating func intern(_ bytes: UnsafeBufferPointer<UInt8>, hash: UInt64) -> (id: Int32, isNew: Bool) {
        var i = Int(truncatingIfNeeded: hash) & mask
        while true {
            let id = slots[i]
            if id < 0 { break }
            if hashes[Int(id)] == hash && equal(Int(id), bytes) { return (id, false) }
            i = (i + 1) & mask
        }
        let id = Int32(hashes.count)
        slots[i] = id
        hashes.append(hash)
        arena.append(contentsOf: bytes)
        starts.append(arena.count)
        if hashes.count * 4 > slots.count * 3 { grow() }   // load factor ≤ 0.75
        return (id, true)
    }

    /// The id of a Swift string, adding it if new.
    public mutating func intern(_ s: String) -> Int32 {
        var copy = s
        return copy.withUTF8 { intern($0, hash: hashBytes($0)).id }
    }

    /// The id of a string if present.
    public func lookup(_ s: String) -> Int32? {
        var copy = s
        return copy.withUTF8 { b -> Int32? in
            let hash = hashBytes(b)
            var i = Int(truncatingIfNeeded: hash) & mask
            while true {
                let id = slots[i]
                if id < 0 { return nil }
                if hashes[Int(id)] == hash && equal(Int(id), b) { return id }
                i = (i + 1) & mask
            }
        }
    }

    @inline(__always)
    func equal(_ id: Int, _ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        let s = starts[id], e = starts[id + 1]
        guard e - s == bytes.count else { return false }
        if bytes.isEmpty { return true }
        return arena.withUnsafeBufferPointer { memcmp($0.baseAddress! + s, bytes.baseAddress!, bytes.count) == 0 }
    }

    mutating func grow() {
        let size = slots.count * 2
        slots = [Int32](repeating: -1, count: size)
        mask = size - 1
        for (id, hash) in hashes.enumerated() {
            var i = Int(truncatingIfNeeded: hash) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(id)
        }
    }

    /// The string with this id.
    public subscript(id: Int32) -> String {
        let s = starts[Int(id)], e = starts[Int(id) + 1]
        return arena.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[s..<e]), as: UTF8.self) }
    }
}
